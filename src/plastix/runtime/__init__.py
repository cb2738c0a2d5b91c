"""The lifecycle of a simulation: :class:`Simulation` (build -> run -> read / write / save / load) and the
modules it delegates to -- state allocation (:mod:`.state`), named state access (:mod:`.access`),
recording (:mod:`.recording`), checkpoints (:mod:`.checkpoint`), the host column view
(:mod:`.columns_host`) and Python global phases (:mod:`.global_phase`)."""
from .simulation import Simulation

__all__ = ["Simulation"]
