"""Images with mosaic domains are pure functions of the seed (issue 4's contract, end to end)."""
import subprocess
import sys

import numpy as np
import pytest

from arraybragg import from_nanobragg_args
from arraybragg.params import DEFAULT_MOSAIC_SEED

ARGS = ["-cell", "70", "80", "90", "75", "85", "95", "-misset", "10", "20", "30", "-default_F", "100", "-N", "5",
        "-distance", "100", "-detpixels", "24", "-pixel", "0.4", "-oversample", "1", "-mosaic", "1.5",
        "-mosaic_dom", "8"]
SCRIPT = ("import sys, numpy as np, arraybragg; "
          "img = arraybragg.from_nanobragg_args(sys.argv[1:]).run(); sys.stdout.buffer.write(img.tobytes())")


@pytest.mark.parametrize("rng", [[], ["-rng", "nanobragg"]])
def test_same_seed_gives_bitwise_identical_images_across_calls_and_processes(rng):
    argv = ARGS + ["-mosaic_seed", "1234"] + rng
    first = from_nanobragg_args(argv).run()
    np.testing.assert_array_equal(first, from_nanobragg_args(argv).run())
    out = subprocess.run([sys.executable, "-c", SCRIPT] + argv, check=True, capture_output=True).stdout
    np.testing.assert_array_equal(np.frombuffer(out, dtype=np.float64).reshape(first.shape), first)


@pytest.mark.parametrize("rng", [[], ["-rng", "nanobragg"]])
def test_different_seeds_give_different_images(rng):
    a = from_nanobragg_args(ARGS + ["-mosaic_seed", "1234"] + rng).run()
    b = from_nanobragg_args(ARGS + ["-mosaic_seed", "1235"] + rng).run()
    assert np.max(np.abs(a - b)) > 1e-3 * np.max(a)


def test_default_seed_is_nanobraggs():
    sim = from_nanobragg_args(ARGS)
    assert sim.crystal.mosaic_seed == DEFAULT_MOSAIC_SEED == -12345678
    explicit = from_nanobragg_args(ARGS + ["-mosaic_seed", "12345678"])
    np.testing.assert_array_equal(sim.run(), explicit.run())


def test_random_misset_is_seeded_and_the_system_seed_is_recorded(capsys):
    argv = ["-cell", "70", "80", "90", "75", "85", "95", "-default_F", "100", "-N", "5", "-detpixels", "16",
            "-pixel", "0.4", "-misset", "random"]
    a = from_nanobragg_args(argv + ["-misset_seed", "4242"])
    np.testing.assert_array_equal(a.run(), from_nanobragg_args(argv + ["-misset_seed", "4242"]).run())
    with pytest.warns(UserWarning, match="misset seed taken from the system"):
        drawn = from_nanobragg_args(argv)
    again = from_nanobragg_args(argv + ["-misset_seed", str(-drawn.crystal.misset_seed)])
    np.testing.assert_array_equal(drawn.run(), again.run())
