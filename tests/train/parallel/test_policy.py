"""The rule cnnkit train follows (cnnkit.train.parallel.policy): how many slices where, and BLAS threads."""

import os

import pytest

import cnnkit as ck
from cnnkit.train.parallel import SMALL_MODEL_MACS, Processes, Threads, describe, plan

LENET_MACS = 416_520


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def test_eligible_models_train_in_slices_on_every_core(two_cores):
    lenet, cifar = ck.models.get("lenet5"), ck.models.get("cifar_net")
    assert plan(lenet, LENET_MACS) == (Processes(2), 1)         # small: threads cannot, processes can
    assert plan(cifar, SMALL_MODEL_MACS) == (Threads(2), 2)     # big: threads; evaluation uses both cores
    assert plan(lenet, LENET_MACS, 3) == (Processes(3), 1)      # --threads: how many cores, not how
    assert plan(cifar, SMALL_MODEL_MACS, 3) == (Threads(3), 3)


def test_other_models_run_whole_batches_on_blas_threads(two_cores):
    lenet, cifar = ck.models.get("lenet5"), ck.models.get("cifar_net")
    batch_norm = ck.Sequential(ck.Conv2d(1, 2, 3), ck.BatchNorm2d(2))
    assert plan(batch_norm, 1000) == (None, 1)                  # small: one BLAS thread is fastest
    assert plan(batch_norm, 1000, 2) == (None, 2)               # ... unless --threads asks for more
    assert plan(ck.models.get("vgg11_bn"), 10**9) == (None, 2)  # big: every core
    assert plan(lenet, LENET_MACS, 1) == (None, 1)              # one core: nothing to share
    assert plan(cifar, SMALL_MODEL_MACS, 2, whole_batches=True) == (None, 2)  # an MPI rank's share
    assert plan(lenet, LENET_MACS, whole_batches=True) == (None, 1)


def test_one_core_machine(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert plan(ck.models.get("lenet5"), LENET_MACS) == (None, 1)
    assert plan(ck.models.get("cifar_net"), SMALL_MODEL_MACS) == (None, 1)


def test_describe():
    assert describe(Processes(2), 1) == "2 processes (batch slices)"
    assert describe(Threads(2), 2) == "2 threads (batch slices)"
    assert describe(None, 1) == "1 thread" and describe(None, 2) == "2 threads"
    assert describe(Threads(1), 1) == "1 thread"


def test_slice_counts_are_checked():
    with pytest.raises(ValueError, match=r"Threads: Received count=0; expected an int >= 1"):
        Threads(0)
    with pytest.raises(ValueError, match=r"Processes: Received count=True; expected an int >= 1"):
        Processes(True)
