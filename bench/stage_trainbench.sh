#!/usr/bin/env bash
# Stage in .trainbench/ (ignored by git) what the training benchmarks need on the device machine, which has no
# internet: the original trainer and the wheels its imports need that the device image lacks.
#
#   bash bench/stage_trainbench.sh MIRROR_GIT_DIR     # a (bare) git mirror of ace-step/ACE-Step
#
#   .trainbench/orig/    the original's trainer.py, acestep/ and config/ at the mirror's HEAD (+ REVISION)
#   .trainbench/whl/     diffusers, loguru, importlib_metadata, zipp (not in the image), peft (pinned to the
#                        version the CPU check used)
#   .trainbench/COMMIT   our commit when staged (the device copy of the tree has no .git)
set -euo pipefail
mirror=${1:?usage: bash bench/stage_trainbench.sh MIRROR_GIT_DIR (a git mirror of ace-step/ACE-Step)}
cd "$(git rev-parse --show-toplevel)"
grep -qx '/.trainbench/' .git/info/exclude || echo '/.trainbench/' >> .git/info/exclude
rm -rf .trainbench/orig
mkdir -p .trainbench/orig .trainbench/whl
# (a mirror missing an unrelated blob, e.g. an asset gif, makes git print "invalid object": the paths named
# here are still complete, checked below)
git --git-dir "$mirror" archive HEAD trainer.py acestep config | tar -x -C .trainbench/orig
test -f .trainbench/orig/trainer.py && test -f .trainbench/orig/acestep/pipeline_ace_step.py
git --git-dir "$mirror" rev-parse HEAD > .trainbench/orig/REVISION
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .trainbench/whl diffusers==0.42.1 loguru==0.7.3 importlib_metadata==8.5.0 zipp==3.21.0 peft==0.21.2
git rev-parse HEAD > .trainbench/COMMIT
du -sh .trainbench/*
du -sh .trainbench
