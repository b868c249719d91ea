"""bigmgr from Python: a client of a running bigmgr server (``bigmgr.connect``) or the engine
embedded in-process (``bigmgr.Embedded``)."""

from ._bigmgr import *  # noqa: F401,F403
from ._bigmgr import __version__  # noqa: F401
