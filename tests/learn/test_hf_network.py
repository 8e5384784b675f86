"""A Hugging Face network built around given weights without drawing random ones first
(workbench.learn.hf_network), as a spans bundle is loaded."""

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import AutoModelForTokenClassification, BertConfig  # noqa: E402

from workbench.learn.hf_network import with_weights  # noqa: E402


@pytest.fixture
def config():
    return BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=40, num_labels=3)


@pytest.fixture
def trained(config):
    """The weights a bundle holds: a network's state dict, as separate tensors."""
    torch.manual_seed(0)
    network = AutoModelForTokenClassification.from_config(config).eval()
    return network, {k: v.clone() for k, v in network.state_dict().items()}


def on_meta(config):
    with torch.device("meta"):
        return AutoModelForTokenClassification.from_config(config)


def logits(network):
    ids = torch.tensor([[2, 7, 11, 3, 0], [2, 9, 3, 0, 0]])
    with torch.no_grad():
        return network.eval()(input_ids=ids, attention_mask=(ids > 0).long()).logits


def test_the_network_takes_the_weights_in_place_and_draws_none(config, trained):
    network, state = trained

    def on_cpu():
        pytest.fail("the network was built with random weights")

    built = with_weights(on_meta(config), state, on_cpu)
    assert all(p.data_ptr() == state[name].data_ptr() for name, p in built.named_parameters())
    assert not any(t.is_meta for t in [*built.parameters(), *built.buffers()])
    # the position ids are in no state dict: made as transformers makes them, not left as garbage
    assert torch.equal(built.bert.embeddings.position_ids, network.bert.embeddings.position_ids)
    assert torch.equal(logits(built), logits(network))


def test_a_transformers_without_initialisation_marks_builds_it_as_before(config, trained, monkeypatch):
    network, state = trained
    monkeypatch.delattr(transformers.PreTrainedModel, "named_non_persistent_buffers")
    calls = []

    def on_cpu():
        calls.append(1)
        return AutoModelForTokenClassification.from_config(config)

    built = with_weights(on_meta(config), state, on_cpu)
    assert calls == [1] and torch.equal(logits(built), logits(network))


def test_weights_drawn_over_while_the_buffers_are_made_are_refused(config, trained, monkeypatch):
    _, state = trained

    def draws_over(self):
        self.classifier.weight.data.normal_()  # as an _init_weights that ignores the marks would

    monkeypatch.setattr(transformers.PreTrainedModel, "initialize_weights", draws_over)
    with pytest.raises(RuntimeError, match="overwrote the loaded weight 'classifier.weight'"):
        with_weights(on_meta(config), state, lambda: pytest.fail("no fallback: the arrays are spoiled"))
