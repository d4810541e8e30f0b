//! Multi-valued code columns stored as `|a|b|` (see the registry migration).
use sea_orm::{ColumnTrait, sea_query::SimpleExpr};

pub fn join<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let parts: Vec<String> = items.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if parts.is_empty() { String::new() } else { format!("|{}|", parts.join("|")) }
}

pub fn split(stored: &str) -> Vec<String> {
    stored.split('|').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The occupation fields (first two digits, Berufsbereich) of stored
/// occupation codes, sorted and without duplicates: a client with two codes
/// of one field counts once in that field.
pub fn fields(stored: &str) -> Vec<String> {
    let mut fields: Vec<String> = split(stored).iter().filter_map(|c| c.get(..2).map(str::to_owned)).collect();
    fields.sort();
    fields.dedup();
    fields
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_").replace('|', "")
}

/// The column holds exactly `value` among its codes.
pub fn contains<C: ColumnTrait>(column: C, value: &str) -> SimpleExpr {
    use sea_orm::ExprTrait;
    use sea_orm::sea_query::{Expr, LikeExpr};
    Expr::col(column.as_column_ref()).like(LikeExpr::new(format!("%|{}|%", escape(value))).escape('\\'))
}

/// One of the column's codes starts with `prefix` (KldB group search).
pub fn any_starts_with<C: ColumnTrait>(column: C, prefix: &str) -> SimpleExpr {
    use sea_orm::ExprTrait;
    use sea_orm::sea_query::{Expr, LikeExpr};
    Expr::col(column.as_column_ref()).like(LikeExpr::new(format!("%|{}%", escape(prefix))).escape('\\'))
}

/// A single-code column starts with `prefix`.
pub fn starts_with<C: ColumnTrait>(column: C, prefix: &str) -> SimpleExpr {
    use sea_orm::ExprTrait;
    use sea_orm::sea_query::{Expr, LikeExpr};
    Expr::col(column.as_column_ref()).like(LikeExpr::new(format!("{}%", escape(prefix))).escape('\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_split_round_trip() {
        assert_eq!(join(["youth", "migrant"]), "|youth|migrant|");
        assert_eq!(join(Vec::<String>::new()), "");
        assert_eq!(split("|youth|migrant|"), vec!["youth", "migrant"]);
        assert!(split("").is_empty());
    }
}
