//! The referral status machine (SPEC §3 "Referrals"), following the FHIR
//! `Task` statuses so partners can map them 1:1. One table, one type: every
//! decision about what may happen to a referral is made here.
use super::codes::{ReferralAction, ReferralStatus};

/// Which party may take an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The provider owning the measure / the employer owning the vacancy (or office staff).
    Target,
    /// The organisation that made the referral (or office staff).
    Referring,
    /// Only the service itself (expiry).
    System,
}

impl ReferralStatus {
    /// `requested`, `on_hold`, `accepted`, `in_progress`: the referral holds its target.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Requested | Self::OnHold | Self::Accepted | Self::InProgress)
    }

    /// No action leads out of a final status.
    pub fn is_final(self) -> bool {
        !self.is_active()
    }

    /// Where `action` leads from here, if it is allowed at all.
    pub fn after(self, action: ReferralAction) -> Option<ReferralStatus> {
        use ReferralAction as A;
        use ReferralStatus as S;
        match (action, self) {
            (A::Accept, S::Requested | S::OnHold) => Some(S::Accepted),
            (A::Waitlist, S::Requested) => Some(S::OnHold),
            (A::Reject, S::Requested | S::OnHold) => Some(S::Rejected),
            (A::Start, S::Accepted) => Some(S::InProgress),
            (A::Complete, S::InProgress) => Some(S::Completed),
            (A::Fail, S::Accepted | S::InProgress) => Some(S::Failed),
            (A::Cancel, S::Requested | S::OnHold | S::Accepted | S::InProgress) => Some(S::Cancelled),
            (A::Expire, S::Requested | S::OnHold) => Some(S::Expired),
            _ => None,
        }
    }

    pub fn can(self, action: ReferralAction) -> bool {
        self.after(action).is_some()
    }

    /// The actions allowed from here.
    pub fn allowed_actions(self) -> Vec<ReferralAction> {
        use super::codes::CodeList;
        ReferralAction::ALL.iter().copied().filter(|a| self.can(*a)).collect()
    }
}

impl ReferralAction {
    pub fn side(self) -> Side {
        match self {
            Self::Accept | Self::Waitlist | Self::Reject | Self::Start | Self::Complete | Self::Fail => Side::Target,
            Self::Cancel => Side::Referring,
            Self::Expire => Side::System,
        }
    }

    /// `reject`, `cancel` and `fail` must say why.
    pub fn needs_reason(self) -> bool {
        matches!(self, Self::Reject | Self::Cancel | Self::Fail)
    }
}

/// How a transition changes the counters of the referral's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterChange {
    /// Measure seats (`accepted` + `in_progress`).
    pub seats_taken: i32,
    /// Measure waitlist (`on_hold`).
    pub waitlisted: i32,
    /// Vacancy positions (`in_progress`).
    pub positions_filled: i32,
}

/// The counter change of moving a referral from `from` to `to`.
pub fn counter_change(from: ReferralStatus, to: ReferralStatus, is_measure: bool) -> CounterChange {
    let count = |s: ReferralStatus| -> CounterChange {
        if is_measure {
            CounterChange {
                seats_taken: i32::from(matches!(s, ReferralStatus::Accepted | ReferralStatus::InProgress)),
                waitlisted: i32::from(s == ReferralStatus::OnHold),
                positions_filled: 0,
            }
        } else {
            CounterChange { positions_filled: i32::from(s == ReferralStatus::InProgress), ..Default::default() }
        }
    };
    let (a, b) = (count(from), count(to));
    CounterChange {
        seats_taken: b.seats_taken - a.seats_taken,
        waitlisted: b.waitlisted - a.waitlisted,
        positions_filled: b.positions_filled - a.positions_filled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::codes::CodeList;
    use ReferralAction as A;
    use ReferralStatus as S;

    /// The SPEC's table, row by row.
    const TABLE: &[(ReferralAction, &[ReferralStatus], ReferralStatus)] = &[
        (A::Accept, &[S::Requested, S::OnHold], S::Accepted),
        (A::Waitlist, &[S::Requested], S::OnHold),
        (A::Reject, &[S::Requested, S::OnHold], S::Rejected),
        (A::Start, &[S::Accepted], S::InProgress),
        (A::Complete, &[S::InProgress], S::Completed),
        (A::Fail, &[S::Accepted, S::InProgress], S::Failed),
        (A::Cancel, &[S::Requested, S::OnHold, S::Accepted, S::InProgress], S::Cancelled),
        (A::Expire, &[S::Requested, S::OnHold], S::Expired),
    ];

    #[test]
    fn every_action_from_every_status_follows_the_table() {
        for (action, froms, to) in TABLE {
            for from in S::ALL {
                let expected = froms.contains(from).then_some(*to);
                assert_eq!(from.after(*action), expected, "{action} from {from}");
            }
        }
    }

    #[test]
    fn final_statuses_allow_nothing() {
        for s in [S::Rejected, S::Completed, S::Failed, S::Cancelled, S::Expired] {
            assert!(s.is_final());
            assert!(s.allowed_actions().is_empty(), "{s}");
        }
    }

    #[test]
    fn sides_follow_the_table() {
        assert_eq!(A::Cancel.side(), Side::Referring);
        assert_eq!(A::Expire.side(), Side::System);
        for a in [A::Accept, A::Waitlist, A::Reject, A::Start, A::Complete, A::Fail] {
            assert_eq!(a.side(), Side::Target);
        }
    }

    #[test]
    fn reasons_are_required_for_reject_cancel_and_fail() {
        let needing: Vec<_> = A::ALL.iter().copied().filter(|a| a.needs_reason()).collect();
        assert_eq!(needing, vec![A::Reject, A::Fail, A::Cancel]);
    }

    #[test]
    fn counters_follow_seats_waitlist_and_positions() {
        let c = counter_change(S::Requested, S::Accepted, true);
        assert_eq!(c, CounterChange { seats_taken: 1, waitlisted: 0, positions_filled: 0 });
        let c = counter_change(S::OnHold, S::Accepted, true);
        assert_eq!(c, CounterChange { seats_taken: 1, waitlisted: -1, positions_filled: 0 });
        let c = counter_change(S::Accepted, S::InProgress, true);
        assert_eq!(c, CounterChange::default());
        let c = counter_change(S::InProgress, S::Completed, true);
        assert_eq!(c.seats_taken, -1);
        let c = counter_change(S::Accepted, S::InProgress, false);
        assert_eq!(c.positions_filled, 1);
        let c = counter_change(S::Requested, S::Accepted, false);
        assert_eq!(c, CounterChange::default());
    }
}

/// Why a client may not join a measure (empty: eligible).
pub fn ineligibility(
    measure_groups: &[super::codes::TargetGroup],
    client_groups: &[super::codes::TargetGroup],
    min_age: Option<i32>,
    max_age: Option<i32>,
    client_age: Option<i32>,
) -> Vec<(&'static str, String)> {
    let mut reasons = Vec::new();
    if !measure_groups.is_empty() && !measure_groups.iter().any(|g| client_groups.contains(g)) {
        let wanted: Vec<_> = measure_groups.iter().map(|g| g.as_str()).collect();
        reasons.push((
            "target_groups",
            format!("the measure is for {}; the client belongs to none of them", wanted.join(", ")),
        ));
    }
    if let Some(age) = client_age {
        if let Some(min) = min_age
            && age < min
        {
            reasons.push(("age", format!("the client is {age}; the measure starts at {min}")));
        }
        if let Some(max) = max_age
            && age > max
        {
            reasons.push(("age", format!("the client is {age}; the measure ends at {max}")));
        }
    }
    reasons
}

#[cfg(test)]
mod eligibility_tests {
    use super::*;
    use crate::domain::codes::TargetGroup as T;

    #[test]
    fn eligible_when_groups_overlap_and_age_fits() {
        assert!(ineligibility(&[T::Youth, T::Migrant], &[T::Migrant], Some(16), Some(25), Some(20)).is_empty());
        assert!(ineligibility(&[], &[T::Founder], None, None, None).is_empty());
    }

    #[test]
    fn lists_every_reason() {
        let r = ineligibility(&[T::Youth], &[T::Founder], Some(16), Some(25), Some(40));
        assert_eq!(r.len(), 2);
        let r = ineligibility(&[], &[], Some(18), None, Some(17));
        assert_eq!(r[0].0, "age");
    }
}
