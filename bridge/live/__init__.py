"""Live performance: the song clock (clock), tempo-synced morphs (morph), latent knobs (knobs), MIDI
in and out (midi) and the daemon's live ops (ops). Imports core, io, runtime and daemon."""
