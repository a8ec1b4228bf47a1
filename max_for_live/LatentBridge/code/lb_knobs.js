// lb_knobs.js -- the 8 latent-direction dials. Maps a model's direction list onto the dials and
// coalesces fast dial movement into at most one `knob` request per dial per interval.
// ES5 only (Max `js`).

var KNOB_COUNT = 8;

function clamp(v, lo, hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

// model: an entry of the `models` reply ({name, directions: [names]}). Returns KNOB_COUNT
// entries {knob, name, direction, enabled}; dials beyond the model's directions are disabled.
function mapDirections(model) {
    var dirs = (model && model.directions) || [];
    var out = [];
    for (var i = 0; i < KNOB_COUNT; i++) {
        var d = dirs[i];
        var name = (d && typeof d === "object") ? d.name : d;
        out.push({
            knob: i,
            name: i < dirs.length ? String(name) : "-",
            direction: i < dirs.length ? String(name) : i,
            enabled: i < dirs.length
        });
    }
    return out;
}

function knobPayload(modelName, mapping, knob, value) {
    var m = mapping[knob];
    if (!m || !m.enabled) { return null; }
    return { model: modelName, direction: m.direction, value: clamp(Number(value), -1, 1) };
}

// Coalesce dial values: push() records the latest value; due(now) returns the knobs whose
// latest value should be sent now (at most one send per knob per intervalMs).
function createThrottle(intervalMs) {
    var latest = {};
    var sentAt = {};
    function push(knob, value) {
        latest[knob] = value;
    }
    function due(now) {
        var out = [];
        for (var k in latest) {
            if (latest.hasOwnProperty(k) && (sentAt[k] === undefined || now - sentAt[k] >= intervalMs)) {
                out.push({ knob: Number(k), value: latest[k] });
                sentAt[k] = now;
                delete latest[k];
            }
        }
        return out;
    }
    return { push: push, due: due };
}

exports.KNOB_COUNT = KNOB_COUNT;
exports.mapDirections = mapDirections;
exports.knobPayload = knobPayload;
exports.createThrottle = createThrottle;
