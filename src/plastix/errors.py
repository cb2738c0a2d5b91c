"""Exception classes.  Each message names the offending parameter and, where there is one, the allowed range."""


class PlastixError(Exception):
    """Base class of every plastix error."""


class ModelError(PlastixError, ValueError):
    """A model description is invalid (unknown names, writes to read-only state, unsupported code)."""


class NetworkError(PlastixError, ValueError):
    """A network is assembled wrongly (duplicate names, size mismatch, bad connectivity)."""


class StateError(PlastixError, ValueError):
    """State given to or produced by a simulation is invalid (wrong shape, unknown name, NaN)."""


class CapacityError(PlastixError, RuntimeError):
    """A bounded buffer or ragged row would overflow; nothing is dropped silently."""


class BackendError(PlastixError, RuntimeError):
    """The requested backend is not usable here (e.g. no CUDA GPU)."""
