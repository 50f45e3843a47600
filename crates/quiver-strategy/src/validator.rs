//! The standard signal validator (seed 002's `StandardValidator`).

use quiver_core::Decision;

/// Why a decision did not become a signal. Bounded: one metric label each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    ConfidenceOutOfRange,
    QuantityOutOfRange,
    NonPositivePrice,
    BelowMinConfidence,
}

impl DropReason {
    /// A decision no strategy should make (a bug or a broken model), as
    /// opposed to one a threshold holds back: counted as a failure.
    pub const fn is_out_of_range(self) -> bool {
        !matches!(self, DropReason::BelowMinConfidence)
    }

    pub const ALL: [DropReason; 4] = [
        DropReason::ConfidenceOutOfRange,
        DropReason::QuantityOutOfRange,
        DropReason::NonPositivePrice,
        DropReason::BelowMinConfidence,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::ConfidenceOutOfRange => "confidence_out_of_range",
            DropReason::QuantityOutOfRange => "quantity_out_of_range",
            DropReason::NonPositivePrice => "non_positive_price",
            DropReason::BelowMinConfidence => "below_min_confidence",
        }
    }
}

/// Confidence in `[0, 1]`, `0 < quantity <= max_quantity`, `price > 0`,
/// `confidence >= min_confidence` — checked in that order, as the seed does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StandardValidator {
    pub min_confidence: f64,
    pub max_quantity: u64,
}

impl Default for StandardValidator {
    fn default() -> Self {
        StandardValidator {
            min_confidence: 0.0,
            max_quantity: 1_000_000_000,
        }
    }
}

impl StandardValidator {
    #[inline]
    pub fn check(&self, decision: &Decision) -> Result<(), DropReason> {
        // Written so that NaN fails every comparison and is refused.
        if !(0.0..=1.0).contains(&decision.confidence) {
            return Err(DropReason::ConfidenceOutOfRange);
        }
        if decision.quantity == 0 || decision.quantity > self.max_quantity {
            return Err(DropReason::QuantityOutOfRange);
        }
        if !decision.price.is_positive() {
            return Err(DropReason::NonPositivePrice);
        }
        if decision.confidence < self.min_confidence {
            return Err(DropReason::BelowMinConfidence);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiver_core::{Metadata, Price, Reasoning, Side};

    quiver_core::fixed_reason!(t, "t");

    fn decision(confidence: f64, quantity: u64, price: i64) -> Decision {
        Decision {
            side: Side::Buy,
            confidence,
            quantity,
            price: Price::from_int(price),
            reasoning: Reasoning::fixed(t),
            metadata: Metadata::EMPTY,
        }
    }

    #[test]
    fn checks_each_rule() {
        let v = StandardValidator {
            min_confidence: 0.3,
            max_quantity: 50,
        };
        assert_eq!(v.check(&decision(0.5, 10, 100)), Ok(()));
        assert_eq!(v.check(&decision(0.3, 50, 1)), Ok(()));
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert_eq!(
                v.check(&decision(bad, 10, 100)),
                Err(DropReason::ConfidenceOutOfRange)
            );
        }
        assert_eq!(
            v.check(&decision(0.5, 0, 100)),
            Err(DropReason::QuantityOutOfRange)
        );
        assert_eq!(
            v.check(&decision(0.5, 51, 100)),
            Err(DropReason::QuantityOutOfRange)
        );
        assert_eq!(
            v.check(&decision(0.5, 10, 0)),
            Err(DropReason::NonPositivePrice)
        );
        assert_eq!(
            v.check(&decision(0.5, 10, -3)),
            Err(DropReason::NonPositivePrice)
        );
        assert_eq!(
            v.check(&decision(0.29, 10, 100)),
            Err(DropReason::BelowMinConfidence)
        );
    }
}
