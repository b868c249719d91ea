//! Pagination of list routes: `?limit=N&after=CURSOR` in, `{"items": [...], "next": CURSOR|null}`
//! out.
//!
//! `limit` is 1..=[`MAX_LIMIT`] (default [`DEFAULT_LIMIT`]). A cursor is opaque to clients: pass
//! a page's `next` as the following request's `after`; `next` is null on the last page. Lists
//! are ordered by a key that only grows (ids, or `name/version` for stacks) and a cursor is the
//! last key of its page, so items created or deleted between two requests never make a page
//! repeat or skip one of the others.

use super::error::ApiError;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The page size when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 100;
/// The largest page size.
pub const MAX_LIMIT: u32 = 1000;

/// The query of every list route.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// At most this many items (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The previous page's `next`: the items after it (an id).
    #[param(pattern = r"^-?[0-9]{1,18}$")]
    pub after: Option<String>,
}

/// The query of `GET /stacks`, whose cursor is `name/version` (the handler reads a
/// [`PageQuery`]; this only documents it).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KeyPageQuery {
    /// At most this many items (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// The previous page's `next`: the items after it (`name/version`).
    pub after: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// The cursor of the next page (pass it as `after`), or null on the last page.
    pub next: Option<String>,
}

fn bad(detail: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad-query", detail)
}

/// A query number in `range` (`default` when absent); 400 naming `name` outside it.
pub fn in_range(
    name: &str,
    value: Option<u32>,
    range: std::ops::RangeInclusive<u32>,
    default: u32,
) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if range.contains(&n) => Ok(n),
        Some(n) => Err(bad(format!(
            "{name}={n} is out of range: give {} to {} (default {default})",
            range.start(),
            range.end()
        ))),
    }
}

impl PageQuery {
    /// The page size asked for; 400 outside 1..=[`MAX_LIMIT`].
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT as usize),
            Some(n @ 1..=MAX_LIMIT) => Ok(n as usize),
            Some(n) => Err(bad(format!(
                "limit={n} is out of range: ask for 1 to {MAX_LIMIT} items (default {DEFAULT_LIMIT})"
            ))),
        }
    }

    /// `after` as an id cursor; 400 if it is not one.
    pub fn after_id(&self) -> Result<Option<i64>, ApiError> {
        self.after
            .as_deref()
            .map(|a| {
                a.parse::<i64>().map_err(|_| {
                    bad(format!(
                        "after='{a}' is not a cursor of this list: pass the 'next' of the previous page"
                    ))
                })
            })
            .transpose()
    }

    /// The page of `items` (in ascending `key` order) after the cursor, `key` making each item's
    /// cursor.
    pub fn page_by_id<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> i64,
    ) -> Result<Page<T>, ApiError> {
        let limit = self.limit()?;
        Ok(page_after(items, limit, self.after_id()?, key))
    }

    /// The page of `items` (in ascending `key` order) whose string key sorts after the cursor.
    pub fn page_by_key<T>(
        &self,
        items: Vec<T>,
        key: impl Fn(&T) -> String,
    ) -> Result<Page<T>, ApiError> {
        Ok(page_after(items, self.limit()?, self.after.clone(), key))
    }
}

/// The first `limit` of `items` (in ascending `key` order) whose key is after `after`, with the
/// last one's key as the cursor when more follow.
fn page_after<T, K: PartialOrd + ToString>(
    items: Vec<T>,
    limit: usize,
    after: Option<K>,
    key: impl Fn(&T) -> K,
) -> Page<T> {
    let rest = items
        .into_iter()
        .filter(|i| after.as_ref().is_none_or(|a| key(i) > *a));
    let mut items: Vec<T> = rest.take(limit + 1).collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|i| key(i).to_string())
    } else {
        None
    };
    Page { items, next }
}

impl<T> Page<T> {
    /// The same page with each item mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<u32>, after: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            after: after.map(str::to_string),
        }
    }

    #[test]
    fn pages_walk_the_list_once() {
        let items: Vec<i64> = (1..=5).collect();
        let p = q(Some(2), None).page_by_id(items.clone(), |i| *i).unwrap();
        assert_eq!((p.items, p.next.as_deref()), (vec![1, 2], Some("2")));
        let p = q(Some(2), Some("2"))
            .page_by_id(items.clone(), |i| *i)
            .unwrap();
        assert_eq!((p.items, p.next.as_deref()), (vec![3, 4], Some("4")));
        let p = q(Some(2), Some("4"))
            .page_by_id(items.clone(), |i| *i)
            .unwrap();
        assert_eq!((p.items, p.next), (vec![5], None));
        let p = q(None, None).page_by_id(items, |i| *i).unwrap();
        assert_eq!((p.items.len(), p.next), (5, None));
    }

    #[test]
    fn bad_limits_and_cursors_are_400() {
        for query in [q(Some(0), None), q(Some(1001), None), q(None, Some("x"))] {
            let e = query.page_by_id(vec![1i64], |i| *i).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{}", e.detail);
        }
        let p = q(Some(1), Some("a/1"))
            .page_by_key(vec!["a/1".to_string(), "b/1".into()], Clone::clone)
            .unwrap();
        assert_eq!(p.items, ["b/1"]);
    }
}
