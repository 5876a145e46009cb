"""squareseq.training.metrics: per-class counts, accuracy, confusion matrix."""
import pytest
import torch

from squareseq.errors import SquareseqError
from squareseq.training.metrics import (
    accuracy,
    confusion_matrix,
    correct_per_class,
    correct_per_class_stacked,
    predicted_classes,
)


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
    g = torch.Generator().manual_seed(0)
    for n_outputs, n_classes in ((1, 2), (3, 3)):
        outputs = torch.randn(5, 20, n_outputs, generator=g)
        y = torch.randint(0, n_classes, (20, 1), generator=g).float()
        stacked = correct_per_class_stacked(outputs, y)
        assert stacked.shape == (5, n_classes, 2) and stacked.dtype == torch.int64
        for k in range(5):
            assert torch.equal(stacked[k], correct_per_class(outputs[k], y))


# -- what callers rely on: defaults, the threshold's edge, shapes and labels checked ---------------

def test_defaults_are_logits_and_a_half_threshold():
    """By default one output is a logit (sigmoid) compared with 0.5, strictly: a logit of 0 is class 0."""
    logits = torch.tensor([[0.0], [0.4], [-0.4], [1e-3]])
    assert predicted_classes(logits).tolist() == [0, 1, 0, 1]
    y = torch.tensor([0, 1, 0, 1])
    assert correct_per_class(logits, y).tolist() == [[2, 2], [2, 2]]
    assert correct_per_class_stacked(logits.unsqueeze(0), y).tolist() == [[[2, 2], [2, 2]]]


def test_probabilities_at_the_threshold_are_class_zero():
    """``probabilities=True`` compares the output itself, strictly greater than ``threshold``."""
    probs = torch.tensor([[0.5], [0.5001], [0.7], [0.71]])
    assert predicted_classes(probs, probabilities=True).tolist() == [0, 1, 1, 1]
    assert predicted_classes(probs, threshold=0.7, probabilities=True).tolist() == [0, 0, 0, 1]
    counts = correct_per_class(probs, torch.tensor([0, 0, 1, 1]), threshold=0.7, probabilities=True)
    assert counts.tolist() == [[2, 2], [1, 2]]


@pytest.mark.parametrize("shape", [(3,), (2, 3, 1)])
def test_outputs_of_the_wrong_shape_are_refused(shape):
    outputs = torch.zeros(shape)
    expected = f"model outputs must have shape (N, n_outputs), got {shape}"
    with pytest.raises(SquareseqError) as info:
        predicted_classes(outputs)
    assert str(info.value) == expected
    with pytest.raises(SquareseqError) as info:
        correct_per_class(outputs, torch.zeros(shape[0]))
    assert str(info.value) == expected


def test_stacked_outputs_must_be_three_dimensional():
    with pytest.raises(SquareseqError) as info:
        correct_per_class_stacked(torch.zeros(4, 1), torch.zeros(4))
    assert str(info.value) == "stacked outputs must have shape (K, N, n_outputs), got (4, 1)"


@pytest.mark.parametrize("n_outputs,n_labels", [(4, 1), (1, 3), (3, 0)])
def test_outputs_and_labels_must_have_the_same_length(n_outputs, n_labels):
    """A length-1 side would broadcast into wrong counts: it is refused instead."""
    outputs = torch.zeros(n_outputs, 1)
    with pytest.raises(SquareseqError) as info:
        correct_per_class(outputs, torch.zeros(n_labels))
    assert str(info.value) == f"got {n_outputs} outputs but {n_labels} labels"
    with pytest.raises(SquareseqError) as info:
        correct_per_class_stacked(outputs.expand(2, -1, -1), torch.zeros(n_labels, 1))
    assert str(info.value) == f"got {n_outputs} outputs but {n_labels} labels"


@pytest.mark.parametrize(
    "n_outputs,labels,message",
    [
        (1, [0, -1, 1], "labels must lie in [0, 1] for a model with 1 output(s), got -1..1"),
        (1, [0, 2, 1], "labels must lie in [0, 1] for a model with 1 output(s), got 0..2"),
        (3, [3, 1, 0], "labels must lie in [0, 2] for a model with 3 output(s), got 0..3"),
        (3, [-2, 1, 5], "labels must lie in [0, 2] for a model with 3 output(s), got -2..5"),
    ],
)
def test_labels_outside_the_classes_are_refused(n_outputs, labels, message):
    outputs = torch.zeros(len(labels), n_outputs)
    with pytest.raises(SquareseqError) as info:
        correct_per_class(outputs, torch.tensor(labels))
    assert str(info.value) == message


def test_n_classes_widens_the_table_and_bounds_the_labels():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    counts = correct_per_class(logits, torch.tensor([0, 1, 3]), n_classes=4)
    assert counts.tolist() == [[1, 1], [1, 1], [0, 0], [0, 1]]
    with pytest.raises(SquareseqError, match=r"^labels must lie in \[0, 3\] for a model with 2 output\(s\), got 0..4$"):
        correct_per_class(logits, torch.tensor([0, 1, 4]), n_classes=4)


def test_an_empty_batch_counts_nothing_and_has_no_accuracy():
    counts = correct_per_class(torch.zeros(0, 1), torch.zeros(0))
    assert counts.tolist() == [[0, 0], [0, 0]]
    assert correct_per_class_stacked(torch.zeros(2, 0, 3), torch.zeros(0)).tolist() == [[[0, 0]] * 3] * 2
    assert accuracy(counts) != accuracy(counts)  # nan: no samples, no accuracy


def test_stacked_counts_keep_models_apart():
    """Two models on the same labels: each row counts that model's hits only."""
    outputs = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],
                            [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]])
    stacked = correct_per_class_stacked(outputs, torch.tensor([0, 1, 1]))
    assert stacked.tolist() == [[[1, 1], [1, 2]], [[0, 1], [2, 2]]]


def test_confusion_matrix_counts_every_pair():
    """Rows are true classes, columns predictions; labels may come as ``(N, 1)`` floats."""
    predicted = torch.tensor([2, 0, 1, 1, 0])
    y = torch.tensor([[0.0], [0.0], [1.0], [2.0], [2.0]])
    assert confusion_matrix(predicted, y, 3).tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    assert confusion_matrix(torch.tensor([0]), torch.tensor([0]), 3).tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def test_confusion_matrix_checks_its_indices_before_counting():
    """A label of 10**12 once sized the count vector (bincount) before anything said it was wrong."""
    with pytest.raises(SquareseqError) as info:
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 10**12]), 2)
    assert str(info.value) == "confusion_matrix: labels must be class indices in [0, 2), got 0..1000000000000"
    with pytest.raises(SquareseqError) as info:
        confusion_matrix(torch.tensor([-1, 1]), torch.tensor([0, 1]), 2)
    assert str(info.value) == "confusion_matrix: predictions must be class indices in [0, 2), got -1..1"
    with pytest.raises(SquareseqError) as info:
        confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1]), 2)
    assert str(info.value) == "confusion_matrix: 3 predictions for 2 labels"
    with pytest.raises(SquareseqError) as info:  # the first index past the classes
        confusion_matrix(torch.tensor([2]), torch.tensor([1]), 2)
    assert str(info.value) == "confusion_matrix: predictions must be class indices in [0, 2), got 2..2"
    assert confusion_matrix(torch.tensor([1]), torch.tensor([1]), 2).tolist() == [[0, 0], [0, 1]]
    assert confusion_matrix(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), 2).tolist() == \
        [[0, 0], [0, 0]]
