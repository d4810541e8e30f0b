//! Turning a page request into a keyset query and the next cursor.
use uuid::Uuid;

use super::cursor::{CursorCodec, Position};
use crate::{
    error::{ApiError, Problem},
    repository::Page,
    routes::common::{Order, PageRequest},
};

/// Where the page starts: the id after which to continue.
pub fn start(codec: &CursorCodec, req: &PageRequest) -> Result<Option<Uuid>, ApiError> {
    let Some(cursor) = &req.cursor else { return Ok(None) };
    let position = codec.decode(cursor, req.order.name(), &req.scope)?;
    position
        .key
        .first()
        .and_then(|k| Uuid::parse_str(k).ok())
        .map(Some)
        .ok_or_else(|| ApiError::new(Problem::InvalidCursor, "The cursor is invalid."))
}

/// Trims the look-ahead row and makes the next cursor from the last id.
pub fn finish<T>(codec: &CursorCodec, req: &PageRequest, mut rows: Vec<T>, id_of: impl Fn(&T) -> Uuid) -> Page<T> {
    let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_cursor = match (more, rows.last()) {
        (true, Some(last)) => Some(codec.encode(&Position {
            order: req.order.name().to_owned(),
            key: vec![id_of(last).to_string()],
            scope: req.scope.clone(),
        })),
        _ => None,
    };
    Page { items: rows, next_cursor }
}

pub fn newest_first(req: &PageRequest) -> bool {
    req.order == Order::NewestFirst
}
