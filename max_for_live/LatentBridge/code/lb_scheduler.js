// lb_scheduler.js -- start generated sequences exactly on their bar.
//
// Morph and knob replies carry "bar" (absolute bar index, bar = floor(beat / beats per bar)). The device
// plays a sequence by writing it into an idle clip slot and firing that slot with a clip launch
// quantization of 1 bar, so Live itself starts it sample-accurately on the next bar line. The
// scheduler's job is to fire during the bar *before* the target bar, and not too close to the
// bar line (a fire that lands after the line would start one bar late). ES5 only (Max `js`).
//
// The bar length comes from the song's time signature: Live counts song time in quarter notes
// (beats), so a bar of numerator/denominator is numerator * 4 / denominator beats (4/4: 4,
// 3/4: 3, 6/8: 3, 7/8: 3.5). Nothing here assumes 4/4.

function beatMs(tempo) {
    return 60000 / tempo;
}

// Beats (quarter notes) in one bar of numerator/denominator; null for a signature that is not one.
function barBeats(numerator, denominator) {
    var n = Number(numerator);
    var d = Number(denominator);
    if (!(n > 0) || !(d > 0) || Math.floor(n) !== n || Math.floor(d) !== d) { return null; }
    return n * 4 / d;
}

// The bar length of a transport state {numerator, denominator}; throws without a valid signature.
function beatsPerBarOf(transport) {
    var b = transport ? barBeats(transport.numerator, transport.denominator) : null;
    if (b === null) { throw new Error("the transport has no valid time signature"); }
    return b;
}

function checkBar(beatsPerBar) {
    if (!(typeof beatsPerBar === "number" && beatsPerBar > 0)) { throw new Error("beatsPerBar must be a positive number, got " + beatsPerBar); }
    return beatsPerBar;
}

function barOf(beat, beatsPerBar) {
    return Math.floor(beat / checkBar(beatsPerBar) + 1e-9);
}

// The first bar that starts strictly after beat.
function nextBar(beat, beatsPerBar) {
    return barOf(beat, beatsPerBar) + 1;
}

// Milliseconds from the transport position (beats) until bar starts, at tempo (BPM).
// Negative when the bar has already started.
function timeToBarMs(beat, tempo, bar, beatsPerBar) {
    return (bar * checkBar(beatsPerBar) - beat) * beatMs(tempo);
}

// opts.marginMs: a fire closer than this to the bar line is considered too late (default 60).
function createScheduler(opts) {
    opts = opts || {};
    var marginMs = typeof opts.marginMs === "number" ? opts.marginMs : 60;
    var queue = []; // sorted by bar; one item per bar (a newer item for the same bar replaces it)
    var stats = { fired: 0, late: 0, retargeted: 0, replaced: 0 };

    function add(item) {
        if (typeof item.bar !== "number" || !isFinite(item.bar)) { throw new Error("scheduled item needs a numeric bar"); }
        for (var i = 0; i < queue.length; i++) {
            if (queue[i].bar === item.bar) {
                queue[i] = item;
                stats.replaced++;
                return;
            }
        }
        queue.push(item);
        queue.sort(function (a, b) { return a.bar - b.bar; });
    }

    function clear() {
        queue = [];
    }

    // transport: {beat, tempo, playing, numerator, denominator}. Returns actions, in order:
    //   {type: "fire", item, bar, msUntil}  fire now; Live starts it at `bar`
    //   {type: "late", item, bar, retargetBar|null}  missed its bar (retargeted or dropped)
    // Nothing fires while the transport is stopped.
    function poll(transport) {
        var actions = [];
        if (!transport || !transport.playing || !(transport.tempo > 0)) { return actions; }
        var beat = transport.beat;
        var bpb = beatsPerBarOf(transport);
        var barMs = bpb * beatMs(transport.tempo);
        var reachable = nextBar(beat, bpb);
        if (timeToBarMs(beat, transport.tempo, reachable, bpb) <= marginMs) { reachable++; }
        // Items whose bar can no longer be hit.
        while (queue.length && queue[0].bar < reachable) {
            var late = queue.shift();
            var retarget = null;
            // The newest information should still be heard: if nothing else is queued, play the
            // late item at the first bar that can still be hit instead of dropping it.
            if (queue.length === 0 && late.retargetable !== false) {
                retarget = reachable;
                late.originalBar = late.bar;
                late.bar = reachable;
                queue.push(late);
                stats.retargeted++;
            }
            stats.late++;
            actions.push({ type: "late", item: late, bar: late.originalBar !== undefined ? late.originalBar : late.bar, retargetBar: retarget });
            if (retarget !== null) { break; }
        }
        if (queue.length) {
            var head = queue[0];
            var ms = timeToBarMs(beat, transport.tempo, head.bar, bpb);
            if (ms > marginMs && ms <= barMs && head.bar === nextBar(beat, bpb)) {
                queue.shift();
                stats.fired++;
                actions.push({ type: "fire", item: head, bar: head.bar, msUntil: ms });
            }
        }
        return actions;
    }

    function msUntilNext(transport) {
        if (!queue.length || !transport || !(transport.tempo > 0)) { return null; }
        return timeToBarMs(transport.beat, transport.tempo, queue[0].bar, beatsPerBarOf(transport));
    }

    return {
        add: add,
        clear: clear,
        poll: poll,
        size: function () { return queue.length; },
        peek: function () { return queue.length ? queue[0] : null; },
        msUntilNext: msUntilNext,
        stats: function () { return stats; }
    };
}

exports.barBeats = barBeats;
exports.beatsPerBarOf = beatsPerBarOf;
exports.barOf = barOf;
exports.nextBar = nextBar;
exports.timeToBarMs = timeToBarMs;
exports.createScheduler = createScheduler;
