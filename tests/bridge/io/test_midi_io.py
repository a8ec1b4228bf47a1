import pretty_midi
import pytest

from bridge.io.midi_io import MidiError, read_melody, read_midi, read_notes, write_midi
from bridge.core.notes import Note


def make_midi(path, tracks, tempo=120.0, time_signatures=((4, 4, 0.0),), tempo_changes=None):
    """tracks: list of (name, program, is_drum, [(pitch, start_s, end_s), ...])."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    for num, den, t in time_signatures:
        pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, t))
    for name, program, is_drum, notes in tracks:
        inst = pretty_midi.Instrument(program, is_drum=is_drum, name=name)
        inst.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
        pm.instruments.append(inst)
    pm.write(str(path))
    if tempo_changes:
        # pretty_midi writes a single tempo; add later tempo events with mido
        import mido
        mid = mido.MidiFile(str(path))
        track0, t_abs, msgs = mid.tracks[0], 0, []
        for msg in track0:
            t_abs += msg.time
            msgs.append((t_abs, msg))
        for tick, bpm in tempo_changes:
            msgs.append((tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))))
        msgs.sort(key=lambda x: (x[0], x[1].type != "set_tempo"))
        track0.clear()
        last = 0
        for tick, msg in msgs:
            track0.append(msg.copy(time=tick - last))
            last = tick
        mid.save(str(path))
    return path


def test_quantizes_to_nearest_sixteenth_with_jitter(tmp_path):
    # 120 bpm: a step is 0.125 s
    path = make_midi(tmp_path / "a.mid", [("lead", 0, False, [(60, 0.01, 0.24), (62, 0.26, 0.49), (64, 1.9, 2.3)])])
    midi = read_midi(path)
    assert [(n.pitch, n.start, n.end) for n in midi.instruments[0].notes] == [
        (60, 0.0, 0.5), (62, 0.5, 1.0), (64, 3.75, 4.5)]
    assert midi.num_steps == 18 and midi.downbeats[0] == 0 and midi.tempo == pytest.approx(120)


def test_follows_tempo_changes(tmp_path):
    # notes are written at 120 bpm on beats 8-10 and 10.5-12; a tempo event at beat 8 halves the
    # tempo, which moves them in seconds (4-6 s, 6.5-8 s) but not on the beat grid
    path = make_midi(tmp_path / "t.mid", [("lead", 0, False, [(60, 4.0, 5.0), (62, 5.25, 6.0)])],
                     tempo_changes=[(220 * 8, 60)])
    pm = pretty_midi.PrettyMIDI(str(path))
    assert pm.instruments[0].notes[1].start == pytest.approx(6.5)
    notes = read_midi(path).instruments[0].notes
    assert [(n.start, n.end) for n in notes] == [(8.0, 10.0), (10.5, 12.0)]


def test_downbeats_every_bar(tmp_path):
    path = make_midi(tmp_path / "d.mid", [("lead", 0, False, [(60, 0.0, 8.0)])])
    assert read_midi(path).downbeats[:4] == [0, 16, 32, 48]


def test_no_time_signature_counts_as_4_4(tmp_path):
    path = make_midi(tmp_path / "n.mid", [("lead", 0, False, [(60, 0, 1)])], time_signatures=())
    assert read_midi(path).instruments


@pytest.mark.parametrize("sigs", [((3, 4, 0.0),), ((4, 4, 0.0), (3, 4, 2.0)), ((6, 8, 0.0),)])
def test_rejects_other_meters(tmp_path, sigs):
    path = make_midi(tmp_path / "w.mid", [("lead", 0, False, [(60, 0, 1)])], time_signatures=sigs)
    with pytest.raises(MidiError, match="not 4/4") as e:
        read_midi(path)
    assert e.value.reason == "not_4_4" and isinstance(e.value, ValueError)


def test_bad_files(tmp_path):
    (tmp_path / "zero.mid").write_bytes(b"")
    good = make_midi(tmp_path / "g.mid", [("lead", 0, False, [(60, 0, 1), (62, 1, 2)])])
    (tmp_path / "cut.mid").write_bytes(good.read_bytes()[:30])
    empty = make_midi(tmp_path / "e.mid", [])
    for name, reason in (("zero.mid", "unreadable"), ("cut.mid", "unreadable"), ("missing.mid", "unreadable")):
        with pytest.raises(MidiError) as e:
            read_midi(tmp_path / name)
        assert e.value.reason == reason and name in str(e.value)
    with pytest.raises(MidiError, match="no notes"):
        read_midi(empty)


def test_write_then_read_trio(tmp_path):
    notes = [Note(72, 0.0, 1.0, 90, 0), Note(74, 1.0, 1.5, 80, 0), Note(40, 0.0, 2.0, 70, 1),
             Note(36, 0.0, 0.25, 100, 2, True), Note(38, 1.0, 1.25, 100, 2, True)]
    path = tmp_path / "trio.mid"
    write_midi(notes, path, tempo=100, programs=[0, 33, 0])
    pm = pretty_midi.PrettyMIDI(str(path))
    assert [(i.program, i.is_drum) for i in pm.instruments] == [(0, False), (33, False), (0, True)]
    assert sorted(read_notes(path, "trio")) == sorted(notes)
    assert read_midi(path).tempo == pytest.approx(100)
    everything = read_notes(path)
    assert len(everything) == 5 and sum(n.is_drum for n in everything) == 2


def test_read_melody_prefers_named_track_then_highest(tmp_path):
    named = make_midi(tmp_path / "m.mid", [("PIANO", 0, False, [(84, 0, 1)]), ("MELODY", 0, False, [(60, 0, 1)])])
    assert [n.pitch for n in read_melody(named)] == [60]
    plain = make_midi(tmp_path / "p.mid", [("chords", 0, False, [(48, 0, 1)]), ("tune", 0, False, [(76, 0, 1)]),
                                           ("strings", 48, False, [(90, 0, 1)])])
    assert [n.pitch for n in read_melody(plain)] == [76]


def test_read_notes_reports_missing_instruments(tmp_path):
    drums_only = make_midi(tmp_path / "dr.mid", [("kit", 0, True, [(36, 0, 0.1)])])
    with pytest.raises(MidiError, match="no melody instrument"):
        read_melody(drums_only)
    with pytest.raises(MidiError, match="bass"):
        read_notes(drums_only, "trio")
    assert [n.pitch for n in read_notes(drums_only, "drums")] == [36]
