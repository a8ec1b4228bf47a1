// A small in-memory Live set behind a LiveAPI-compatible constructor, recording every call.
// Only what the device uses is modelled; unknown paths/properties/functions throw, so a typo
// in the device code fails a test instead of silently passing.
"use strict";

function makeClip(opts) {
  return {
    name: opts.name || "",
    notes: (opts.notes || []).map((n) => Object.assign({ mute: 0 }, n)),
    loop_start: opts.loop_start || 0,
    loop_end: opts.length || 4,
    end_marker: opts.length || 4,
    looping: 1,
    is_midi_clip: opts.audio ? 0 : 1,
    launch_quantization: 0,
    legato: 0,
  };
}

function createLiveSet(spec) {
  const set = {
    song: Object.assign({ current_song_time: 0, tempo: 120, is_playing: 0, signature_numerator: 4, signature_denominator: 4,
      root_note: 0, scale_intervals: [0, 2, 4, 5, 7, 9, 11], scale_mode: 0 }, spec.song || {}),
    tracks: spec.tracks.map((t) => ({
      name: t.name, midi: t.midi !== false,
      slots: t.slots.map((c) => (c ? makeClip(c) : null)), fired: [],
    })),
    deviceTrack: spec.deviceTrack || 0,
    deviceId: spec.deviceId || 42,
    highlighted: spec.highlighted || null, // {track, slot}
    calls: [],
    created: 0,        // LiveAPI objects constructed
    observers: [],     // [{prop, callback}] of LiveAPI objects with a callback and a property
  };
  // Changing a song property calls its observers, as Live does (tests just assign set.song.x = v).
  const songValues = set.song;
  set.song = new Proxy(songValues, {
    set(target, prop, value) {
      const changed = target[prop] !== value;
      target[prop] = value;
      if (changed) for (const o of set.observers) if (o.prop === prop) o.callback([prop, Array.isArray(value) ? value.slice() : value]);
      return true;
    },
  });

  // Stable ids, as Live's: a clip or track keeps its id wherever it moves (ids last one session).
  let nextId = 1000;
  const idOf = (obj) => { if (!obj._id) Object.defineProperty(obj, "_id", { value: nextId++, enumerable: false }); return obj._id; };
  set.tracks.forEach(idOf);
  // Insert an empty scene at `index` (every track gets an empty slot there), as Live's Insert Scene.
  set.insertScene = (index) => { for (const t of set.tracks) t.slots.splice(index, 0, null); };
  set.clipId = (t, s) => idOf(set.tracks[t].slots[s]);

  function resolve(path) {
    const p = path.replace(/"/g, "").trim();
    if (p === "live_set") return { kind: "song", path: p };
    let byId = /^id (\d+)$/.exec(p);
    if (byId) {
      const want = +byId[1];
      for (let t = 0; t < set.tracks.length; t++) {
        if (set.tracks[t]._id === want) return { kind: "track", t, path: `live_set tracks ${t}` };
        const s = set.tracks[t].slots.findIndex((c) => c && c._id === want);
        if (s >= 0) return { kind: "clip", t, s, path: `live_set tracks ${t} clip_slots ${s} clip` };
      }
      return null; // deleted: id 0
    }
    if (p === "this_device") return { kind: "device", path: `live_set tracks ${set.deviceTrack} devices 0` };
    if (p === "this_device canonical_parent") return { kind: "track", t: set.deviceTrack, path: `live_set tracks ${set.deviceTrack}` };
    if (p === "live_set view highlighted_clip_slot") {
      if (!set.highlighted) return null;
      return { kind: "slot", t: set.highlighted.track, s: set.highlighted.slot, path: `live_set tracks ${set.highlighted.track} clip_slots ${set.highlighted.slot}` };
    }
    let m = /^live_set tracks (\d+)$/.exec(p);
    if (m) return set.tracks[+m[1]] ? { kind: "track", t: +m[1], path: p } : null;
    m = /^live_set tracks (\d+) clip_slots (\d+)$/.exec(p);
    if (m) return set.tracks[+m[1]] && +m[2] < set.tracks[+m[1]].slots.length ? { kind: "slot", t: +m[1], s: +m[2], path: p } : null;
    m = /^live_set tracks (\d+) clip_slots (\d+) clip$/.exec(p);
    if (m) {
      const tr = set.tracks[+m[1]];
      return tr && tr.slots[+m[2]] ? { kind: "clip", t: +m[1], s: +m[2], path: p } : null;
    }
    throw new Error(`fake LiveAPI: unknown path ${path}`);
  }

  function LiveAPI(a, b) {
    const callback = typeof a === "function" ? a : null;
    const path = callback ? b : a;
    set.created++;
    const r = resolve(path);
    if (callback) {
      const self = this;
      let prop = null;
      Object.defineProperty(this, "property", {
        get: () => prop,
        set: (p) => {
          if (!r || r.kind !== "song") throw new Error(`fake LiveAPI: observing ${p} on ${path} is not modelled`);
          if (!(p in songValues)) throw new Error(`fake song has no ${p} to observe`);
          prop = p;
          set.observers.push({ prop: p, callback: (args) => callback.call(self, args) });
        },
      });
    }
    this.id = !r ? 0 : r.kind === "device" ? set.deviceId : r.kind === "clip" ? idOf(set.tracks[r.t].slots[r.s])
      : r.kind === "track" ? idOf(set.tracks[r.t]) : 1 + set.calls.length;
    this.unquotedpath = r ? r.path : "";
    this.path = r ? `"${r.path}"` : "";
    this._r = r;
  }
  LiveAPI.prototype._clip = function () {
    const r = this._r;
    const c = r && r.kind === "clip" ? set.tracks[r.t].slots[r.s] : null;
    if (!c) throw new Error(`fake LiveAPI: no clip at ${this.unquotedpath}`);
    return c;
  };
  LiveAPI.prototype.get = function (prop) {
    const r = this._r;
    set.calls.push(["get", this.unquotedpath, prop]);
    if (!r) throw new Error("get on an id-0 object");
    if (r.kind === "song") {
      if (!(prop in set.song)) throw new Error(`fake song has no ${prop}`);
      const v = set.song[prop];
      return Array.isArray(v) ? v.slice() : [v]; // LiveAPI.get returns a list of atoms
    }
    if (r.kind === "track") {
      const t = set.tracks[r.t];
      if (prop === "name") return [t.name];
      if (prop === "has_midi_input") return [t.midi ? 1 : 0];
      throw new Error(`fake track has no ${prop}`);
    }
    if (r.kind === "slot") {
      if (prop === "has_clip") return [set.tracks[r.t].slots[r.s] ? 1 : 0];
      throw new Error(`fake slot has no ${prop}`);
    }
    const c = this._clip();
    if (!(prop in c) || prop === "notes") throw new Error(`fake clip has no ${prop}`);
    return [c[prop]];
  };
  LiveAPI.prototype.set = function (prop, value) {
    set.calls.push(["set", this.unquotedpath, prop, value]);
    const c = this._clip();
    if (!(prop in c) || prop === "notes") throw new Error(`fake clip cannot set ${prop}`);
    c[prop] = value;
  };
  LiveAPI.prototype.getcount = function (list) {
    set.calls.push(["getcount", this.unquotedpath, list]);
    const r = this._r;
    if (r.kind === "song" && list === "tracks") return set.tracks.length;
    if (r.kind === "track" && list === "clip_slots") return set.tracks[r.t].slots.length;
    throw new Error(`fake getcount ${list} on ${r.kind}`);
  };
  LiveAPI.prototype.call = function (fn, ...args) {
    set.calls.push(["call", this.unquotedpath, fn, ...args]);
    const r = this._r;
    if (fn === "set_notes" || fn === "get_notes" || fn === "replace_selected_notes") {
      throw new Error(`device used the pre-Live-11 note API: ${fn}`);
    }
    if (r.kind === "slot") {
      const tr = set.tracks[r.t];
      if (fn === "create_clip") {
        if (tr.slots[r.s]) throw new Error("create_clip on an occupied slot (Live raises here)");
        tr.slots[r.s] = makeClip({ length: args[0] });
        return;
      }
      if (fn === "fire") { tr.fired.push(r.s); return; }
      if (fn === "stop") return;
      throw new Error(`fake slot has no function ${fn}`);
    }
    const c = this._clip();
    if (fn === "get_notes_extended") {
      const [fromPitch, pitchSpan, fromTime, timeSpan] = args;
      const notes = c.notes.filter((n) => n.pitch >= fromPitch && n.pitch < fromPitch + pitchSpan &&
        n.start_time >= fromTime && n.start_time < fromTime + timeSpan);
      return JSON.stringify({ notes: notes.map((n, i) => Object.assign({ note_id: i + 1, probability: 1, velocity_deviation: 0, release_velocity: 64 }, n)) });
    }
    if (fn === "add_new_notes") {
      const d = args[0];
      if (!d || !Array.isArray(d.notes)) throw new Error("add_new_notes needs {notes: [...]}");
      for (const n of d.notes) {
        for (const k of ["pitch", "start_time", "duration"]) if (typeof n[k] !== "number") throw new Error(`note without ${k}`);
        c.notes.push(Object.assign({}, n));
      }
      return;
    }
    if (fn === "remove_notes_extended") {
      const [fromPitch, pitchSpan, fromTime, timeSpan] = args;
      c.notes = c.notes.filter((n) => !(n.pitch >= fromPitch && n.pitch < fromPitch + pitchSpan &&
        n.start_time >= fromTime && n.start_time < fromTime + timeSpan));
      return;
    }
    throw new Error(`fake clip has no function ${fn}`);
  };
  return { set, LiveAPI };
}

module.exports = { createLiveSet };
