"""Side-by-side chat: N panes streamed concurrently (streams), a visitor's session, and extras."""

from pipeline.chat.session import ChatSession, PaneConfig, Params, Turn, metrics_line
from pipeline.chat.streams import PaneSpec, PaneState, stream_panes

__all__ = ["ChatSession", "PaneConfig", "PaneSpec", "PaneState", "Params", "Turn", "metrics_line",
           "stream_panes"]
