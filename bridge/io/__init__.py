"""Files: MIDI in and out (midi_io), piano-roll pictures (pianoroll). Imports only bridge.core."""
