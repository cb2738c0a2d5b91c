"""The package version, in a leaf module: code generation keys its cache on it without importing the
package face."""
__version__ = "0.1.0"
