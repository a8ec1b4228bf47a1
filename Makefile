# The two commands of the README. Both set up what they need first.
.PHONY: serve test setup setup-dev

JACK_TESTS = tests/bridge/live/test_midi.py

serve: setup
	.venv/bin/python -m bridge serve

test: setup-dev
	LATENT_BRIDGE_REQUIRE_MAGENTA_JS=1 .venv/bin/python -m pytest tests --ignore=$(JACK_TESTS)
	@# python-rtmidi's JACK backend can crash (segfault) or deadlock in native code now and then:
	@# the JACK tests run in their own process, up to three times
	@for i in 1 2 3; do .venv/bin/python -m pytest $(JACK_TESTS) && exit 0; echo "JACK tests: attempt $$i failed"; done; exit 1
	@if [ -d max_for_live/LatentBridge/tests ]; then node --test max_for_live/LatentBridge/tests/; fi

setup:
	bash scripts/setup.sh runtime

setup-dev:
	bash scripts/setup.sh dev
