// lb_transport.js -- decides when to send `transport` to the daemon (the device is the clock).
// While playing: several reports per beat (every min(maxIntervalMs, beat/perBeat)); at once on
// start/stop, tempo or time-signature change, or a jump of the song position; while stopped a
// heartbeat every 500 ms: half the client's ping interval, so its replies keep the connection
// heard and no ping is needed (a ping's reply carries the server time: a new Max symbol each).
// ES5 only (Max `js`).

function createReporter(opts) {
    opts = opts || {};
    var perBeat = opts.perBeat || 4;
    var maxIntervalMs = opts.maxIntervalMs || 250;
    var idleIntervalMs = opts.idleIntervalMs || 500;
    var jumpBeats = opts.jumpBeats || 0.5;
    var last = null;   // last reported state
    var lastAt = -1e12;

    function payload(s) {
        return {
            tempo: s.tempo,
            beat: Math.round(s.beat * 1e4) / 1e4,
            playing: !!s.playing,
            numerator: s.numerator || 4,
            denominator: s.denominator || 4
        };
    }

    // state: {tempo, beat, playing, numerator, denominator}; now: ms. Returns a payload or null.
    function update(state, now) {
        if (!state || !(state.tempo > 0) || typeof state.beat !== "number") { return null; }
        var send = false;
        if (last === null) {
            send = true;
        } else if (!!state.playing !== last.playing || state.tempo !== last.tempo ||
                   (state.numerator || 4) !== last.numerator || (state.denominator || 4) !== last.denominator) {
            send = true;
        } else if (state.playing) {
            var expected = last.beat + (now - lastAt) * state.tempo / 60000;
            var interval = Math.min(maxIntervalMs, 60000 / state.tempo / perBeat);
            if (Math.abs(state.beat - expected) > jumpBeats || now - lastAt >= interval) { send = true; }
        } else if (state.beat !== last.beat || now - lastAt >= idleIntervalMs) {
            send = true;
        }
        if (!send) { return null; }
        last = payload(state);
        lastAt = now;
        return last;
    }

    function reset() {
        last = null;
        lastAt = -1e12;
    }

    return { update: update, reset: reset };
}

exports.createReporter = createReporter;
