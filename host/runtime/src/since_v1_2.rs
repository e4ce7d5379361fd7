//! Conversions of what contract 1.2.0 added (`http-apis`), with the checks a guest's
//! answer must pass before the host builds anything from it. Each error names the API (by
//! index and toolset) and the field at fault.

use dynamic_toolset_core as core;
use dynamic_toolset_core::gate::has_template;

use crate::Error;
use crate::bindings::http_apis;

/// HTTP APIs one detector may describe.
pub(crate) const MAX_HTTP_APIS: usize = 8;
/// Path patterns one API may list.
const MAX_PATHS: usize = 16;
const MAX_TOOLSET_BYTES: usize = 128;
const MAX_DESCRIPTION_BYTES: usize = 1024;
const MAX_INSTRUCTIONS_BYTES: usize = 8 * 1024;
const MAX_PATH_BYTES: usize = 256;

/// Checks and converts the answer of `http-apis`.
pub(crate) fn http_apis_from_wit(
    apis: Vec<http_apis::HttpApi>,
) -> Result<Vec<core::HttpApi>, Error> {
    if apis.len() > MAX_HTTP_APIS {
        return Err(Error::InvalidHttpApis(format!(
            "describes {} APIs (limit {MAX_HTTP_APIS})",
            apis.len()
        )));
    }
    let mut out: Vec<core::HttpApi> = Vec::with_capacity(apis.len());
    for (i, api) in apis.into_iter().enumerate() {
        let api = http_api(i, api)?;
        if out.iter().any(|a| a.toolset == api.toolset) {
            return Err(Error::InvalidHttpApis(format!(
                "[{i}].toolset {:?} is described twice",
                api.toolset
            )));
        }
        out.push(api);
    }
    Ok(out)
}

fn http_api(i: usize, api: http_apis::HttpApi) -> Result<core::HttpApi, Error> {
    let bad = |field: &str, why: String| {
        Error::InvalidHttpApis(format!("[{i}] ({}).{field}: {why}", shown(&api.toolset)))
    };
    let toolset_ok = !api.toolset.is_empty()
        && api.toolset.len() <= MAX_TOOLSET_BYTES
        && api
            .toolset
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !toolset_ok {
        return Err(bad(
            "toolset",
            format!("must be 1 to {MAX_TOOLSET_BYTES} characters of [A-Za-z0-9-_./]"),
        ));
    }
    let text_ok = |s: &str, max: usize, newlines: bool| {
        !s.trim().is_empty()
            && s.len() <= max
            && !has_template(s)
            && s.chars()
                .all(|c| !c.is_control() || (newlines && c == '\n'))
    };
    if !text_ok(&api.description, MAX_DESCRIPTION_BYTES, false) {
        return Err(bad(
            "description",
            format!(
                "must be one line of 1 to {MAX_DESCRIPTION_BYTES} bytes, without control characters or templates"
            ),
        ));
    }
    if !text_ok(&api.instructions, MAX_INSTRUCTIONS_BYTES, true) {
        return Err(bad(
            "instructions",
            format!(
                "must be 1 to {MAX_INSTRUCTIONS_BYTES} bytes of text (newlines allowed), without other control characters or templates"
            ),
        ));
    }
    if api.paths.is_empty() || api.paths.len() > MAX_PATHS {
        return Err(bad(
            "paths",
            format!("must list 1 to {MAX_PATHS} path patterns"),
        ));
    }
    for (j, p) in api.paths.iter().enumerate() {
        if let Err(why) = path_pattern(p) {
            return Err(bad(&format!("paths[{j}]"), why));
        }
    }
    Ok(core::HttpApi {
        toolset: api.toolset,
        description: api.description,
        instructions: api.instructions,
        paths: api.paths,
    })
}

/// A HolmesGPT path glob under the endpoint's base path: "/" then path characters, "*"
/// only as the last character, no "." or ".." segment (the base path cannot be left).
fn path_pattern(p: &str) -> Result<(), String> {
    let body = p.strip_suffix('*').unwrap_or(p);
    if !p.starts_with('/') || p.len() > MAX_PATH_BYTES {
        return Err(format!(
            "{:?} must start with \"/\" and be at most {MAX_PATH_BYTES} bytes",
            shown(p)
        ));
    }
    if !body
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-._~/%".contains(c))
    {
        return Err(format!(
            "{:?} may hold only [A-Za-z0-9-._~/%] and a final \"*\"",
            shown(p)
        ));
    }
    if body.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!("{:?} holds a \".\" or \"..\" segment", shown(p)));
    }
    // "//host/..." reads as another host to URL joiners: never an empty segment.
    if p.contains("//") {
        return Err(format!("{:?} holds an empty segment (\"//\")", shown(p)));
    }
    Ok(())
}

/// At most 64 characters of untrusted text, for messages.
fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(toolset: &str, paths: &[&str]) -> http_apis::HttpApi {
        http_apis::HttpApi {
            toolset: toolset.into(),
            description: "Context API".into(),
            instructions: "- GET /api/v1/context/discover : the context types".into(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_clean_api_converts_unchanged() {
        let out =
            http_apis_from_wit(vec![api("kubernaut/context", &["/api/v1/context/*"])]).unwrap();
        assert_eq!(out[0].toolset, "kubernaut/context");
        assert_eq!(out[0].paths, ["/api/v1/context/*"]);
    }

    #[test]
    fn each_bad_field_is_named() {
        let err = |a: http_apis::HttpApi| http_apis_from_wit(vec![a]).unwrap_err().to_string();
        assert!(err(api("", &["/x"])).contains("[0] ().toolset"));
        assert!(err(api("a b", &["/x"])).contains(".toolset"));
        assert!(err(api("t", &[])).contains("(t).paths:"));
        assert!(err(api("t", &["x"])).contains("paths[0]"));
        assert!(err(api("t", &["/a/*/b"])).contains("paths[0]"));
        assert!(err(api("t", &["/a/../b"])).contains("\"..\""));
        assert!(err(api("t", &["/a?q=1"])).contains("paths[0]"));
        let mut templated = api("t", &["/x"]);
        templated.instructions = "GET {{ env.SECRET }}".into();
        assert!(err(templated).contains("(t).instructions"));
        let mut two_lines = api("t", &["/x"]);
        two_lines.description = "a\nb".into();
        assert!(err(two_lines).contains("(t).description"));
        let twice = http_apis_from_wit(vec![api("t", &["/x"]), api("t", &["/y"])]);
        assert!(twice.unwrap_err().to_string().contains("described twice"));
        // Hostile sizes and values: 1 MB of instructions, a host or a template in a path,
        // Jinja in the description.
        let mut huge = api("t", &["/x"]);
        huge.instructions = "a".repeat(1 << 20);
        assert!(err(huge).contains("(t).instructions"));
        assert!(err(api("t", &["//attacker.example.com/*"])).contains("empty segment"));
        assert!(err(api("t", &["/{{ env.KEY }}"])).contains("paths[0]"));
        let mut jinja = api("t", &["/x"]);
        jinja.description = "{% for x in y %}".into();
        assert!(err(jinja).contains("(t).description"));
        // Quotes and semicolons are only text (no shell ever sees it): kept as written.
        let mut quoted = api("t", &["/x"]);
        quoted.description = "it's \"fine\"; really".into();
        let out = http_apis_from_wit(vec![quoted]).unwrap();
        assert_eq!(out[0].description, "it's \"fine\"; really");
        let many: Vec<_> = (0..=MAX_HTTP_APIS)
            .map(|i| api(&format!("t{i}"), &["/x"]))
            .collect();
        assert!(http_apis_from_wit(many).is_err());
    }
}
