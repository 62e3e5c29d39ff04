use super::*;
use crate::fixtures::{run_cases, Case, Check};
use crate::ops::gradcheck::{assert_grad_close, numeric_grad, test_values};

#[test]
fn binary_empty_target_with_empty_prediction_is_zero() {
    let (loss, dlogits) = binary_dice_loss(&[-30.0f32; 1000], &[0.0; 1000], EPS).unwrap();
    assert!(loss.is_finite() && loss.abs() < 1e-6, "{loss}");
    assert!(dlogits.iter().all(|g| g.is_finite()));
}

#[test]
fn binary_all_ones_prediction_on_empty_target_is_one() {
    let (loss, _) = binary_dice_loss(&[30.0f32; 1000], &[0.0; 1000], EPS).unwrap();
    assert!((loss - 1.0).abs() < 1e-6, "{loss}");
    let (perfect, _) = binary_dice_loss(&[30.0f64; 1000], &[1.0; 1000], EPS).unwrap();
    assert!(perfect.abs() < 1e-9, "{perfect}");
}

#[test]
fn binary_backward_matches_finite_differences() {
    let logits: Vec<f64> = test_values(60, 31).iter().map(|v| 4.0 * v).collect();
    let target: Vec<f64> = test_values(60, 32)
        .iter()
        .map(|&v| f64::from(v > 0.2))
        .collect();
    let (_, dlogits) = binary_dice_loss(&logits, &target, EPS).unwrap();
    let numeric = numeric_grad(&logits, 1e-6, |v| {
        binary_dice_loss(v, &target, EPS).unwrap().0
    });
    assert_grad_close("dlogits", &dlogits, &numeric, 1e-7);
}

#[test]
fn categorical_backward_matches_finite_differences_with_absent_classes() {
    let dims = [2, 4, 1, 3, 2];
    let logits: Vec<f64> = test_values(48, 33).iter().map(|v| 3.0 * v).collect();
    // Classes 0, 1 and 3 present; class 2 absent.
    let labels: Vec<u8> = (0..12).map(|i| [0, 1, 3][i % 3]).collect();
    let (result, dlogits) = categorical_dice_loss(&logits, dims, &labels, EPS).unwrap();
    assert_eq!(
        result.dice.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, true, false, true]
    );
    let mean: f64 = result.dice.iter().flatten().map(|d| 1.0 - d).sum::<f64>() / 3.0;
    assert!((result.loss - mean).abs() < 1e-15);

    let numeric = numeric_grad(&logits, 1e-6, |v| {
        categorical_dice_loss(v, dims, &labels, EPS).unwrap().0.loss
    });
    assert_grad_close("dlogits", &dlogits, &numeric, 1e-7);
    // The absent class's logits still move through the softmax.
    assert!(dlogits[2 * 6..3 * 6].iter().any(|g| g.abs() > 1e-6));
}

#[test]
fn categorical_without_voxels_has_zero_loss_and_gradient() {
    let (result, dlogits) = categorical_dice_loss::<f32>(&[], [1, 3, 0, 2, 2], &[], EPS).unwrap();
    assert_eq!(result.loss, 0.0);
    assert!(dlogits.is_empty());
    assert_eq!(result.dice, vec![None; 3]);
}

#[test]
fn labels_outside_the_classes_are_an_error() {
    let err = categorical_dice_loss(&[0.0f32; 4], [1, 2, 1, 1, 2], &[0, 2], EPS).unwrap_err();
    assert!(err.to_string().contains("label 2 at voxel 1"), "{err}");
    assert!(categorical_dice_loss(&[0.0f32; 4], [1, 2, 1, 1, 2], &[0], EPS).is_err());
    assert!(binary_dice_loss(&[0.0f32; 4], &[0.0; 3], EPS).is_err());
}

#[test]
fn hard_predictions_and_their_dice() {
    // Two samples, 3 classes, 2 voxels each: logits laid out N,C,(voxels).
    let logits = [
        1.0f32, 0.0, 2.0, 0.0, 0.0, 5.0, /* n=1 */ 0.0, 0.0, 0.0, 1.0, -1.0, 0.0,
    ];
    let labels = predict_labels(&logits, [2, 3, 1, 1, 2]).unwrap();
    assert_eq!(labels, vec![1, 2, 0, 1]);
    assert_eq!(
        predict_labels(&[0.5f32, -0.5], [1, 1, 1, 1, 2]).unwrap(),
        vec![1, 0]
    );

    let dice = hard_dice_per_class(&labels, &[1, 2, 1, 1], 4);
    assert_eq!(
        dice,
        vec![Some(0.0), Some(2.0 * 2.0 / 5.0), Some(1.0), None]
    );
}

fn run_binary<T: Real>(case: &Case) -> Vec<Check> {
    let logits = case.values::<T>("logits");
    let (loss, dlogits) = binary_dice_loss(
        &logits,
        &case.values::<T>("target"),
        case.param_f64("eps").expect("eps"),
    )
    .unwrap();
    let probs = crate::ops::activation::sigmoid_forward(&logits);
    vec![
        case.check("loss", &[T::of(loss)]),
        case.check("dlogits", &dlogits),
        case.check("probs", &probs),
    ]
}

fn run_categorical<T: Real>(case: &Case) -> Vec<Check> {
    let dims = case.dims::<5>("logits");
    let logits = case.values::<T>("logits");
    let labels: Vec<u8> = case.f64("labels").iter().map(|&v| v as u8).collect();
    let (result, dlogits) =
        categorical_dice_loss(&logits, dims, &labels, case.param_f64("eps").expect("eps")).unwrap();
    let probs = crate::ops::activation::softmax_forward(&logits, dims).unwrap();
    vec![
        case.check("loss", &[T::of(result.loss)]),
        case.check("dlogits", &dlogits),
        case.check("probs", &probs),
    ]
}

/// The categorical cases are those with a label map.
fn run_either<T: Real>(case: &Case) -> Vec<Check> {
    if case.has("labels") {
        run_categorical::<T>(case)
    } else {
        run_binary::<T>(case)
    }
}

#[test]
fn matches_pytorch_fixtures() {
    run_cases(
        "dice::matches_pytorch_fixtures",
        &["sigmoid_binary_dice_loss", "softmax_categorical_dice_loss"],
        run_either::<f64>,
        run_either::<f32>,
    );
}
