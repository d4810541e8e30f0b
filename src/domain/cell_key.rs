//! The cell-key method (issue 12): consistent noise on every published count.
//!
//! Suppressing each answer on its own is not enough: two groupings of the
//! same data, or a filter with and without one person, can be subtracted to
//! reveal a hidden small cell. The German statistical offices protected the
//! 2022 census with the cell-key method (after the Australian Bureau of
//! Statistics), and this is a small version of it:
//!
//! - every record (client) carries a random **record key** in [0, 2³²),
//!   stored and never served;
//! - a cell's key is the sum of its records' keys modulo 2³² (the "sum
//!   modulo 1" of keys in [0, 1), in integers), so the same set of records
//!   has the same key in every table, grouping and endpoint, and across
//!   restarts;
//! - a fixed, public **perturbation table** maps (count, cell key) to a
//!   noise value in −[`MAX_DEVIATION`]..=+[`MAX_DEVIATION`].
//!
//! Differencing two answers then yields the difference plus two noise
//! values the reader cannot know, and asking again gives the same noise, so
//! averaging repeated answers does not remove it either. The table is
//! public; the record keys are what must stay secret.
//!
//! The table is symmetric, so the expected noise of every count is exactly
//! 0 (unbiased). A count of zero stays zero (no records, no noise), and a
//! count of at least one stays at least one, so a published zero is a real
//! zero. A perturbed count from 1 to `min_cell − 1` is still suppressed
//! ([`publish`]).

/// The largest change the noise makes to a count.
pub const MAX_DEVIATION: u64 = 2;

/// The variance of the noise of a count of 3 or more (the full table):
/// 10/20 × 1² + 4/20 × 2² = 1.3. Smaller counts get less (see [`noise`]).
pub const VARIANCE: f64 = 1.3;

/// The method's name in every statistics answer.
pub const METHOD: &str = "cell-key";

/// The perturbation table: the 20 equally likely slices of the cell-key
/// range and the noise of each. 6/20 no change, 5/20 each −1 and +1, 2/20
/// each −2 and +2. Slice 0 is "no change", so a cell whose key is 0 is
/// published exactly (tests rely on it to pin exact numbers).
const TABLE: [i8; 20] = [0, 0, 0, 0, 0, 0, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, -2, -2, 2, 2];

/// A fresh random record key in [0, 2³²), from the OS generator.
pub fn new_record_key() -> u32 {
    rand::random::<u32>()
}

/// The record key of a record that belongs to a client but is a record of
/// its own (a referral, a funding application): the owner's key times an
/// odd number taken from the record's id. Multiplying by an odd number is a
/// bijection modulo 2³², so the derived key is as uniform and as secret as
/// the owner's key, while two records of one owner get different keys.
pub fn derived_key(owner_key: u32, record_id: u128) -> u32 {
    owner_key.wrapping_mul(key_factor(record_id))
}

/// The odd number a record's id contributes to its derived key: the id's
/// 128 bits (UUID v7: the low bits are random) folded into 32, made odd.
/// Stored with each referral (`referrals.key_factor`) so the database can
/// sum derived keys per cell: `derived_key(k, id) = k · key_factor(id) mod 2³²`.
pub fn key_factor(record_id: u128) -> u32 {
    let folded =
        (record_id as u32) ^ ((record_id >> 32) as u32) ^ ((record_id >> 64) as u32) ^ ((record_id >> 96) as u32);
    folded | 1
}

/// The record key of a record without a client (an organisation's funding
/// application): an HMAC of its id under a secret the service keeps, so it
/// is as unpredictable as a stored random key without a column of its own.
pub fn secret_key(secret: &[u8], record_id: u128) -> u32 {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret) else { return 0 };
    mac.update(&record_id.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]])
}

/// A cell being counted: how many records and the sum of their keys.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    pub count: u64,
    pub key: u32,
}

impl Cell {
    /// Counts one record with key `record_key`.
    pub fn add(&mut self, record_key: u32) {
        self.count += 1;
        self.key = self.key.wrapping_add(record_key);
    }

    /// Counts the record when `yes`.
    pub fn add_if(&mut self, yes: bool, record_key: u32) {
        if yes {
            self.add(record_key);
        }
    }

    /// Counts `count` records at once whose keys sum to `key_sum` (modulo
    /// 2³²): what the database hands back for a group (`COUNT`, `SUM`).
    pub fn add_group(&mut self, count: u64, key_sum: u32) {
        self.count += count;
        self.key = self.key.wrapping_add(key_sum);
    }

    /// Adds another cell's records.
    pub fn merge(&mut self, other: Cell) {
        self.add_group(other.count, other.key);
    }

    /// The perturbed count (before suppression).
    pub fn perturbed(self) -> u64 {
        self.count.saturating_add_signed(noise(self.count, self.key))
    }
}

/// The noise for a cell of `count` records whose cell key is `key`. Counts
/// of 1 and 2 are limited to `±(count − 1)` so they stay at least 1; the
/// table is symmetric, so clipping it keeps the mean at 0.
pub fn noise(count: u64, key: u32) -> i64 {
    let slice = ((u64::from(key) * TABLE.len() as u64) >> 32) as usize;
    let limit = i64::try_from(count.saturating_sub(1).min(MAX_DEVIATION)).unwrap_or(0);
    i64::from(TABLE[slice]).clamp(-limit, limit)
}

/// A count as published: perturbed, then `None` when the perturbed count
/// is from 1 to `min_cell − 1` (the small-cell rule still holds).
pub fn publish(cell: Cell, min_cell: u64) -> Option<u64> {
    super::statistics::publish(cell.perturbed(), min_cell)
}

/// A rate of two perturbed counts (each a cell of its own); `None` when
/// the perturbed denominator is below `min_cell`. Capped at 1: the noise of
/// the part and of the whole are independent, so the part may come out
/// larger.
pub fn publish_rate(part: Cell, whole: Cell, min_cell: u64) -> Option<f64> {
    super::statistics::publish_rate(part.perturbed().min(whole.perturbed()), whole.perturbed(), min_cell)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key inside slice `i` of the table.
    fn key_of_slice(i: u64) -> u32 {
        u32::try_from(((i << 32) + (1 << 31)) / 20).unwrap()
    }

    #[test]
    fn zero_stays_zero_whatever_the_key() {
        for i in 0..20 {
            assert_eq!(Cell { count: 0, key: key_of_slice(i) }.perturbed(), 0);
        }
    }

    #[test]
    fn the_exact_mean_noise_of_every_count_is_zero_and_within_the_maximum_deviation() {
        for count in 0..200u64 {
            let noises: Vec<i64> = (0..20).map(|i| noise(count, key_of_slice(i))).collect();
            assert_eq!(noises.iter().sum::<i64>(), 0, "count {count}: {noises:?}");
            assert!(noises.iter().all(|n| n.unsigned_abs() <= MAX_DEVIATION), "count {count}: {noises:?}");
            if count >= 1 {
                assert!(noises.iter().all(|n| count as i64 + n >= 1), "count {count} went to zero: {noises:?}");
            }
        }
    }

    #[test]
    fn the_variance_of_a_full_table_is_the_documented_one() {
        let var = (0..20).map(|i| noise(10, key_of_slice(i)).pow(2) as f64).sum::<f64>() / 20.0;
        assert!((var - VARIANCE).abs() < 1e-9, "{var}");
    }

    #[test]
    fn over_many_random_cells_the_mean_deviation_stays_near_zero() {
        // Cells built the way the service builds them: random record keys
        // summed, for counts from 1 to 60.
        let mut total = 0i64;
        let mut cells = 0i64;
        for round in 0..4_000u64 {
            let mut cell = Cell::default();
            for _ in 0..(round % 60 + 1) {
                cell.add(new_record_key());
            }
            let deviation = cell.perturbed() as i64 - cell.count as i64;
            assert!(deviation.unsigned_abs() <= MAX_DEVIATION);
            total += deviation;
            cells += 1;
        }
        let mean = total as f64 / cells as f64;
        // The standard error of the mean is about √1.3 / √4000 ≈ 0.018.
        assert!(mean.abs() < 0.1, "mean deviation {mean}");
    }

    #[test]
    fn the_same_records_give_the_same_cell_in_any_order() {
        let keys = [7u32, u32::MAX, 123_456_789, 42];
        let mut forward = Cell::default();
        keys.iter().for_each(|k| forward.add(*k));
        let mut backward = Cell::default();
        keys.iter().rev().for_each(|k| backward.add(*k));
        assert_eq!(forward, backward);
        assert_eq!(forward.perturbed(), backward.perturbed());
    }

    #[test]
    fn a_cell_whose_key_is_zero_is_published_exactly() {
        assert_eq!(Cell { count: 17, key: 0 }.perturbed(), 17);
    }

    #[test]
    fn a_perturbed_count_below_the_minimum_is_suppressed() {
        // 5 records, slice 16 (−2) → 3, below a minimum of 5.
        assert_eq!(publish(Cell { count: 5, key: key_of_slice(16) }, 5), None);
        assert_eq!(publish(Cell { count: 5, key: key_of_slice(18) }, 5), Some(7));
    }

    #[test]
    fn a_group_counts_like_its_records_one_by_one() {
        let keys = [7u32, u32::MAX, 123_456_789, 42];
        let mut one_by_one = Cell::default();
        keys.iter().for_each(|k| one_by_one.add(*k));
        let sum: u64 = keys.iter().map(|k| u64::from(*k)).sum();
        let mut grouped = Cell::default();
        grouped.add_group(keys.len() as u64, (sum % (1 << 32)) as u32);
        assert_eq!(one_by_one, grouped);
    }

    #[test]
    fn a_derived_key_is_the_owner_key_times_the_stored_factor() {
        let id = 0x0190_1234_5678_7abc_8def_0123_4567_89abu128;
        assert_eq!(key_factor(id) % 2, 1);
        for owner in [0u32, 1, 99, u32::MAX] {
            let product = u64::from(owner) * u64::from(key_factor(id));
            assert_eq!(derived_key(owner, id), (product % (1 << 32)) as u32);
        }
    }

    #[test]
    fn derived_keys_of_a_zero_owner_are_zero_and_differ_per_record_otherwise() {
        assert_eq!(derived_key(0, 12345), 0);
        assert_ne!(derived_key(99, 1 << 40), derived_key(99, 3 << 40));
    }
}
