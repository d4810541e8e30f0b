//! Small-cell suppression for anonymised statistics (SPEC §3 "Statistics").
//!
//! A count between 1 and `min_cell − 1` could identify a person, so it is
//! shown as `null`. A total is suppressed as well when any cell of its column
//! is, because total minus the visible cells would reveal the hidden one.

/// The language of labels and CSV headers: German when the caller's
/// `Accept-Language` puts German first, else English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    De,
    En,
}

impl Lang {
    pub fn pick<'a>(self, de: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::De => de,
            Lang::En => en,
        }
    }
}

/// A count as published: `None` when suppressed.
pub fn publish(count: u64, min_cell: u64) -> Option<u64> {
    if count > 0 && count < min_cell { None } else { Some(count) }
}

/// A column total: suppressed when it is small itself or hides a small cell.
pub fn publish_total(total: u64, any_cell_suppressed: bool, min_cell: u64) -> Option<u64> {
    if any_cell_suppressed { None } else { publish(total, min_cell) }
}

/// A rate `part / whole`, suppressed when the whole is a small count.
pub fn publish_rate(part: u64, whole: u64, min_cell: u64) -> Option<f64> {
    if whole == 0 || whole < min_cell {
        return None;
    }
    Some(((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_below_the_minimum_are_hidden_but_zero_is_not() {
        assert_eq!(publish(0, 5), Some(0));
        assert_eq!(publish(1, 5), None);
        assert_eq!(publish(4, 5), None);
        assert_eq!(publish(5, 5), Some(5));
    }

    #[test]
    fn totals_hide_when_a_cell_hides() {
        assert_eq!(publish_total(100, true, 5), None);
        assert_eq!(publish_total(100, false, 5), Some(100));
        assert_eq!(publish_total(3, false, 5), None);
    }

    #[test]
    fn rates_need_a_large_enough_denominator() {
        assert_eq!(publish_rate(1, 4, 5), None);
        assert_eq!(publish_rate(1, 0, 5), None);
        assert_eq!(publish_rate(2, 8, 5), Some(0.25));
    }
}
