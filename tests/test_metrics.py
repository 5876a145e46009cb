"""squareseq.metrics: per-class counts, accuracy, confusion matrix."""
import torch

from squareseq.metrics import accuracy, confusion_matrix, correct_per_class, predicted_classes


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
