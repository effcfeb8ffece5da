#!/usr/bin/python3
"""A minimal RTSP server on 127.0.0.1 for fallwatch's tests (GStreamer's RTSP server via GI).

Serves one H.264 MP4 clip at rtsp://127.0.0.1:PORT/clip. Every client gets the clip from its start
(non-shared media). With --loop the clip repeats (non-flushing segment seeks, so timestamps keep
increasing); without it the stream ends after one pass (RTCP BYE).

Prints "PORT <n>" on stdout once listening, then serves until killed (SIGTERM/SIGINT).
Run with /usr/bin/python3 (Debian's python3-gi): a pyenv python cannot import gi.
"""
import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """Media factory whose pipeline optionally loops the clip with segment seeks."""

    def __init__(self, clip, loop):
        super().__init__()
        self.clip = clip
        self.loop = loop
        self.set_shared(False)
        self.set_launch(
            f"( filesrc location={clip} ! qtdemux name=demux demux.video_0 ! queue ! "
            "h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
        )
        if loop:
            self.connect("media-configure", self._on_configure)

    def _on_configure(self, _factory, media):
        pipeline = media.get_element()
        bus = pipeline.get_bus()
        demux = pipeline.get_by_name("demux")

        def rearm():
            demux.seek(1.0, Gst.Format.TIME, Gst.SeekFlags.SEGMENT,
                       Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)

        def on_message(_bus, msg):
            if msg.type == Gst.MessageType.SEGMENT_DONE:
                rearm()
            return True

        bus.add_signal_watch()
        bus.connect("message", on_message)
        media.connect("prepared", lambda _m: rearm())


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("clip")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--loop", action="store_true")
    args = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    server.get_mount_points().add_factory("/clip", LoopingFactory(args.clip, args.loop))
    if server.attach(None) == 0:
        print("rtsp_server: cannot listen", file=sys.stderr)
        return 1
    print(f"PORT {server.get_bound_port()}", flush=True)
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
