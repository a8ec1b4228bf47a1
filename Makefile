# The two commands of the README. Both set up what they need first.
.PHONY: serve test setup setup-dev mutants

JACK_TESTS = tests/bridge/live/test_midi_jack.py tests/bridge/surface/test_web_jack.py
JACK_LOG = build/jack-test.log

serve: setup
	.venv/bin/python -m bridge serve --state-dir state

test: setup-dev
	LATENT_BRIDGE_REQUIRE_MAGENTA_JS=1 .venv/bin/python -m pytest tests $(addprefix --ignore=,$(JACK_TESTS))
	@# The JACK tests run once, in their own process: python-rtmidi's JACK backend is native code, and a
	@# crash there must not take the other tests with it. Never rerun: a crash is reported as a crash,
	@# with jackd's log (a hang fails at its timeout with every thread's stack).
	@mkdir -p build; rm -f $(JACK_LOG); LATENT_BRIDGE_JACK_LOG=$(JACK_LOG) .venv/bin/python -m pytest $(JACK_TESTS); rc=$$?; \
	if [ $$rc -ne 0 ]; then \
	  if [ $$rc -gt 128 ]; then echo "JACK test: the test process CRASHED (signal $$((rc - 128)))"; \
	  else echo "JACK test: FAILED (pytest exit status $$rc)"; fi; \
	  echo "--- jackd log ($(JACK_LOG)) ---"; cat $(JACK_LOG) 2>/dev/null; exit $$rc; fi
	@if [ -d max_for_live/LatentBridge/tests ]; then node --test max_for_live/LatentBridge/tests/; fi

setup:
	bash scripts/setup.sh runtime

setup-dev:
	bash scripts/setup.sh dev

# Developer check, not part of `make test` (see README): named mutants of the code, each applied to a
# fresh copy of the tree; every one must be caught by the tests meant to catch it.
mutants: setup-dev
	.venv/bin/python scripts/mutants.py
