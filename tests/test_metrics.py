"""squareseq.training.metrics: per-class counts, accuracy, confusion matrix."""
import torch

from squareseq.training.metrics import accuracy, confusion_matrix, correct_per_class, predicted_classes


def test_single_logit_uses_sigmoid_threshold():
    logits = torch.tensor([[-2.0], [0.1], [3.0], [-0.1]])
    y = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    counts = correct_per_class(logits, y)
    assert counts.tolist() == [[2, 3], [1, 1]] and counts.dtype == torch.int64


def test_probabilities_compare_directly_with_threshold():
    probs = torch.tensor([[0.4], [0.6]])
    assert predicted_classes(probs, probabilities=True).tolist() == [0, 1]
    # as logits, 0.4 would be a probability of 0.6 -> class 1
    assert predicted_classes(probs, probabilities=False).tolist() == [1, 1]


def test_several_logits_use_argmax_and_count_every_class():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0]])
    y = torch.tensor([0, 1, 1, 2])
    assert correct_per_class(logits, y).tolist() == [[1, 1], [1, 2], [0, 1]]


def test_accuracy_and_confusion_matrix():
    counts = torch.tensor([[50, 53], [75, 75]])
    assert accuracy(counts) == 125 / 128
    cm = confusion_matrix(torch.tensor([0, 1, 1, 0]), torch.tensor([0, 1, 0, 0]), 2)
    assert cm.tolist() == [[2, 1], [0, 1]]


def test_stacked_counts_equal_each_models_counts():
    """correct_per_class_stacked(outputs)[k] == correct_per_class(outputs[k]), one output or several."""
    from squareseq.training.metrics import correct_per_class_stacked

    g = torch.Generator().manual_seed(0)
    for n_outputs, n_classes in ((1, 2), (3, 3)):
        outputs = torch.randn(5, 20, n_outputs, generator=g)
        y = torch.randint(0, n_classes, (20, 1), generator=g).float()
        stacked = correct_per_class_stacked(outputs, y)
        assert stacked.shape == (5, n_classes, 2) and stacked.dtype == torch.int64
        for k in range(5):
            assert torch.equal(stacked[k], correct_per_class(outputs[k], y))
