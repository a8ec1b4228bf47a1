"""Control surfaces: play the daemon without Live (docs/surfaces.md).

A typed OSC address space (`/lb/knob/1 f`, `/lb/sample`, ...) for TouchOSC, Open Stage Control,
Lemur and the like, and a browser control page (`serve --web PORT`) over WebSocket. Both are thin
transports over one `SurfaceHub`: each surface client gets a `SurfaceSession` (a daemon session of
its own), and every action is translated into the daemon's existing ops (decode, encode, knob,
morph, stop, transport, directions) called on that session with a synthetic request.

    config.py    SurfaceConfig: surface.toml (addresses, reply port, rate, tempo, hosts)
    values.py    the typed checks of a surface message's arguments
    state.py     SurfaceState: what a surface shows (model, knobs, labels, status, bar, pattern)
    session.py   SurfaceSession: the per-surface daemon session; captures the ops' replies
    actions.py   Actions: typed actions -> the registry's ops, in the scheduler
    phrase.py    PhraseRecorder: the last phrase played into MIDI in (A/B learn)
    osc.py       OscSurface: the UDP route for the address space, OscOutbox (feedback as OSC)
    web.py       WebSurface: the page and its WebSocket (websockets), WebOutbox
    feedback.py  Feedback: the bounded-rate thread sending state back, feeding the MIDI clock
    service.py   SurfaceHub (the sessions) and the serve options --surface / --web
"""
