//! Filters and paging of `GET /api/v1/services`: parsing the query (a bad value is an error
//! naming the parameter) and selecting a page. Pure; the handler only calls it.

use std::collections::BTreeMap;

use super::model::{ServicePage, ServiceView};

/// Default and largest page size.
pub const DEFAULT_LIMIT: usize = 500;
pub const MAX_LIMIT: usize = 5000;

/// A validated `?namespace=&backend=&chosen=&limit=&continue=` query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceQuery {
    pub namespace: Option<String>,
    /// A toolset name (`prometheus/metrics`) or its backend part (`prometheus`).
    pub backend: Option<String>,
    pub chosen: Option<bool>,
    pub limit: usize,
    /// `namespace/name` of the last Service of the previous page.
    pub after: Option<String>,
}

/// A query parameter with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query parameter `{parameter}`: {reason}")]
pub struct BadQuery {
    pub parameter: String,
    pub reason: String,
}

fn bad(parameter: &str, reason: impl Into<String>) -> BadQuery {
    BadQuery {
        parameter: parameter.into(),
        reason: reason.into(),
    }
}

/// The parameters `GET /api/v1/services` understands.
const KNOWN: &[&str] = &["namespace", "backend", "chosen", "limit", "continue"];

impl ServiceQuery {
    /// Validates the raw query parameters. Unknown parameters are refused (a typo must not
    /// silently return everything).
    pub fn parse(params: &BTreeMap<String, String>) -> Result<Self, BadQuery> {
        if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(bad(
                unknown,
                format!("unknown parameter (known: {})", KNOWN.join(", ")),
            ));
        }
        let non_empty = |k: &str| -> Result<Option<String>, BadQuery> {
            match params.get(k) {
                None => Ok(None),
                Some(v) if v.is_empty() => Err(bad(k, "empty value")),
                Some(v) if v.len() > 253 => Err(bad(k, "longer than 253 characters")),
                Some(v) => Ok(Some(v.clone())),
            }
        };
        let chosen = match params.get("chosen").map(String::as_str) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(other) => {
                return Err(bad("chosen", format!("{other:?} is not `true` or `false`")));
            }
        };
        let limit = match params.get("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(bad(
                        "limit",
                        format!("{v:?} is not a number from 1 to {MAX_LIMIT}"),
                    ));
                }
            },
        };
        let after = non_empty("continue")?;
        if let Some(a) = &after
            && a.split_once('/').is_none()
        {
            return Err(bad(
                "continue",
                "not a token this API gave (expected namespace/name)",
            ));
        }
        Ok(ServiceQuery {
            namespace: non_empty("namespace")?,
            backend: non_empty("backend")?,
            chosen,
            limit,
            after,
        })
    }

    fn matches(&self, s: &ServiceView) -> bool {
        self.namespace.as_ref().is_none_or(|ns| &s.namespace == ns)
            && self.chosen.is_none_or(|c| s.chosen == c)
            && self.backend.as_ref().is_none_or(|b| {
                s.backends()
                    .any(|t| t == b || t.split_once('/').is_some_and(|(backend, _)| backend == b))
            })
    }

    /// The page of `services` (sorted by namespace and name) this query asks for.
    pub fn page(&self, services: &[ServiceView]) -> ServicePage {
        let matching = services.iter().filter(|s| self.matches(s));
        let total = matching.clone().count();
        let start = self.after.as_ref().map_or(0, |after| {
            let (ns, name) = after.split_once('/').unwrap_or((after, ""));
            // The first Service after the token, even if that one has gone since.
            services.partition_point(|s| (s.namespace.as_str(), s.name.as_str()) <= (ns, name))
        });
        let mut items: Vec<ServiceView> = services[start..]
            .iter()
            .filter(|s| self.matches(s))
            .take(self.limit + 1)
            .cloned()
            .collect();
        let next = if items.len() > self.limit {
            items.truncate(self.limit);
            items.last().map(ServiceView::key)
        } else {
            None
        };
        ServicePage { items, total, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::model::{Outcome, VerdictView};

    fn svc(ns: &str, name: &str, toolset: Option<&str>, chosen: bool) -> ServiceView {
        ServiceView {
            namespace: ns.into(),
            name: name.into(),
            verdicts: vec![VerdictView {
                detector: "d".into(),
                outcome: if toolset.is_some() {
                    Outcome::Matched
                } else {
                    Outcome::Unrelated
                },
                reason: None,
                toolset: toolset.map(str::to_string),
                instance: None,
                endpoint: None,
            }],
            chosen,
            not_chosen_because: vec![],
        }
    }

    fn q(pairs: &[(&str, &str)]) -> Result<ServiceQuery, BadQuery> {
        ServiceQuery::parse(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn all() -> Vec<ServiceView> {
        let mut v = vec![
            svc("a", "grafana", Some("grafana/dashboards"), true),
            svc("a", "prom", Some("prometheus/metrics"), true),
            svc("a", "redis", None, false),
            svc("b", "prom", Some("prometheus/metrics"), false),
            svc("c", "x", None, false),
        ];
        v.sort_by_key(ServiceView::key);
        v
    }

    #[test]
    fn bad_values_name_the_parameter() {
        assert_eq!(q(&[("chosen", "yes")]).unwrap_err().parameter, "chosen");
        assert_eq!(q(&[("limit", "0")]).unwrap_err().parameter, "limit");
        assert_eq!(q(&[("limit", "many")]).unwrap_err().parameter, "limit");
        assert_eq!(q(&[("namespace", "")]).unwrap_err().parameter, "namespace");
        assert_eq!(
            q(&[("continue", "nope")]).unwrap_err().parameter,
            "continue"
        );
        let e = q(&[("namspace", "a")]).unwrap_err();
        assert_eq!(e.parameter, "namspace");
        assert!(e.to_string().contains("unknown parameter"), "{e}");
    }

    #[test]
    fn filters_combine() {
        let s = all();
        let page = q(&[("backend", "prometheus")]).unwrap().page(&s);
        assert_eq!(
            page.items.iter().map(ServiceView::key).collect::<Vec<_>>(),
            ["a/prom", "b/prom"]
        );
        let page = q(&[("backend", "prometheus/metrics"), ("chosen", "false")])
            .unwrap()
            .page(&s);
        assert_eq!(page.total, 1);
        assert_eq!(page.items[0].key(), "b/prom");
        let page = q(&[("namespace", "a")]).unwrap().page(&s);
        assert_eq!(page.total, 3);
        assert!(page.next.is_none());
    }

    #[test]
    fn pages_walk_everything_once_even_when_the_token_service_is_gone() {
        let s = all();
        let mut seen = vec![];
        let mut after: Option<String> = None;
        loop {
            let mut pairs = vec![("limit", "2".to_string())];
            if let Some(a) = &after {
                pairs.push(("continue", a.clone()));
            }
            let query = ServiceQuery::parse(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            )
            .unwrap();
            let page = query.page(&s);
            assert_eq!(page.total, 5);
            seen.extend(page.items.iter().map(ServiceView::key));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, all().iter().map(ServiceView::key).collect::<Vec<_>>());
        // The token's Service deleted between pages: the walk resumes after where it was.
        let fewer: Vec<ServiceView> = all().into_iter().filter(|s| s.key() != "a/prom").collect();
        let page = q(&[("continue", "a/prom")]).unwrap().page(&fewer);
        assert_eq!(page.items[0].key(), "a/redis");
    }
}
