use super::*;

fn parse(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::parse(
        text,
        Path::new("/etc/freeway"),
        Path::new("/etc/freeway/gateway.toml"),
        &|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
    )
}

const MINIMAL: &str = r#"
        [plugins]
        dir = "plugins"
        [providers.groq]
        adapter = "openai-compatible"
        base_url = "https://api.groq.com/openai/v1/"
        api_key_env = "GROQ_API_KEY"
        models = ["llama"]
        [models.fast]
        targets = ["groq/llama"]
    "#;

#[test]
fn minimal_config_gets_defaults_and_resolves_paths() {
    let config = parse(MINIMAL, &[("GROQ_API_KEY", "sk-test")]).expect("valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.plugin_dir, Path::new("/etc/freeway/plugins"));
    let groq = &config.providers["groq"];
    assert_eq!(groq.base_url, "https://api.groq.com/openai/v1");
    assert!(groq.disabled.is_none());
    assert_eq!(groq.api_key.as_ref().map(ApiKey::expose), Some("sk-test"));
    assert_eq!(config.models["fast"].router, "priority-fallback");
    assert!(
        !format!("{config:?}").contains("sk-test"),
        "Debug must not leak keys"
    );
}

#[test]
fn missing_key_disables_provider_with_reason() {
    let config = parse(MINIMAL, &[]).expect("still valid");
    assert_eq!(
        config.providers["groq"].disabled.as_deref(),
        Some("environment variable GROQ_API_KEY is not set")
    );
}

#[test]
fn unknown_key_is_refused_with_its_path() {
    let text = MINIMAL.replace(
        "models = [\"llama\"]",
        "models = [\"llama\"]\nbase_ulr = \"x\"",
    );
    let err = parse(&text, &[]).expect_err("unknown key");
    assert_eq!(err.path, "providers.groq.base_ulr");
    assert!(err.reason.contains("unknown field"), "{err}");
}

#[test]
fn wrong_type_names_the_path() {
    let text = MINIMAL.replace("[plugins]", "[server]\nmax_body_bytes = \"big\"\n[plugins]");
    let err = parse(&text, &[]).expect_err("wrong type");
    assert_eq!(err.path, "server.max_body_bytes");
}

#[test]
fn target_must_name_a_listed_model() {
    let text = MINIMAL.replace(
        "targets = [\"groq/llama\"]",
        "targets = [\"groq/llama\", \"groq/mixtral\"]",
    );
    let err = parse(&text, &[]).expect_err("unlisted model");
    assert_eq!(err.path, "models.fast.targets[1]");
}

#[test]
fn env_references_expand_with_defaults() {
    let text = MINIMAL.replace(
        "https://api.groq.com/openai/v1/",
        "${GROQ_URL:-http://127.0.0.1:9/v1}",
    );
    let config = parse(&text, &[]).expect("default used");
    assert_eq!(config.providers["groq"].base_url, "http://127.0.0.1:9/v1");
    let config = parse(&text, &[("GROQ_URL", "http://10.0.0.1/v1")]).expect("var used");
    assert_eq!(config.providers["groq"].base_url, "http://10.0.0.1/v1");
    let text = MINIMAL.replace("https://api.groq.com/openai/v1/", "${GROQ_URL}");
    let err = parse(&text, &[]).expect_err("unset without default");
    assert_eq!(err.path, "providers.groq.base_url");
    assert!(err.reason.contains("GROQ_URL"));
}
