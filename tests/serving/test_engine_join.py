"""Continuous batching: requests that arrive while a batch decodes join it between steps, and
every answer is still exactly transformers' own."""

from __future__ import annotations

import queue

import pytest

pytest.importorskip("peft")


def test_late_requests_join_a_running_batch_and_answer_as_alone(models):
    from lfm.serving.auth import Keys
    from lfm.serving.engine import Event, Job, Sampling
    from lfm.serving.server import AdapterSpec, ModelServer
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    server = ModelServer(
        str(models.base),
        [AdapterSpec("one", str(models.one)), AdapterSpec("two", str(models.two))],
        keys=Keys([]),
    )
    tokenizer = AutoTokenizer.from_pretrained(models.base)
    cases = [("one", "hello world", 60), ("tiny", "a", 10), ("two", "the quick brown fox", 12),
             ("one", "b", 6), ("two", "hello", 18)]  # fmt: skip
    events: list[queue.Queue[Event]] = [queue.Queue() for _ in cases]
    received: list[list[Event]] = [[] for _ in cases]
    try:
        for i, (model, prompt, max_tokens) in enumerate(cases):
            adapter = server.adapters.get(model)
            job = Job(tokenizer(prompt)["input_ids"], adapter.internal if adapter else None,
                      Sampling(max_tokens, temperature=0), events[i].put)  # fmt: skip
            server.engine.submit(job)
            if i == 0:  # the first answer is flowing: the others arrive while it decodes
                received[0].append(events[0].get(timeout=60))
        for got, queue_ in zip(received, events, strict=True):
            while not got or got[-1].kind == "text":
                got.append(queue_.get(timeout=120))
    finally:
        server.close()
    assert all(got[-1].kind == "done" for got in received)
    answers = ["".join(e.text for e in got if e.kind == "text") for got in received]
    assert server.engine.joined > 0  # they joined the first one's running batch
    expected = []
    for model, prompt, max_tokens in cases:
        reference = AutoModelForCausalLM.from_pretrained(models.base)
        if model != "tiny":
            reference = PeftModel.from_pretrained(reference, getattr(models, model))
        ids = tokenizer(prompt, return_tensors="pt")
        out = reference.eval().generate(**ids, max_new_tokens=max_tokens, do_sample=False)
        expected.append(
            tokenizer.decode(out[0, ids.input_ids.shape[1] :], skip_special_tokens=True)
        )
    assert answers == expected
