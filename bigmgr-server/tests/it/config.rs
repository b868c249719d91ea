//! Settings: the admin token file, the environment token, config file vs environment vs flags,
//! and refused settings.

use bigmgr_test_support::{
    Api, ServerProc, assert_contains, copy_dir, free_addrs, stacks_dir, temp_file,
};
use std::os::unix::fs::PermissionsExt;

#[tokio::test]
async fn the_admin_token_file_is_private_printed_once_and_reused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut first = ServerProc::serve().data(&data).start();
    let token = first.token();
    assert!(token.starts_with("bmt_"), "{token}");
    let file = data.join("admin-token");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.display());
    let printed = first.proc.stdout.text();
    assert!(
        printed.contains(&token),
        "the first start shows the token:\n{printed}"
    );
    assert!(first.stop().success());

    let second = ServerProc::serve().data(&data).start();
    assert_eq!(second.token(), token);
    let printed = second.proc.stdout.text();
    assert!(
        !printed.contains(&token),
        "later starts do not show it:\n{printed}"
    );
    second.api().get("/clusters").await.expect(200);
}

#[tokio::test]
async fn the_environment_token_is_honoured() {
    let env_token = "operator-chosen-token-0123456789";
    let server = ServerProc::serve()
        .env("BIGMGR_ADMIN_TOKEN", env_token)
        .start();
    assert_eq!(
        server.token(),
        env_token,
        "the file holds the token in force"
    );
    assert!(!server.proc.stdout.text().contains(env_token));
    let api = Api::new(&server.url, Some(env_token.into()));
    api.get("/clusters").await.expect(200);
    api.with_token(Some("bmt_something_else_entirely"))
        .get("/clusters")
        .await
        .problem(401);
}

#[test]
fn a_weak_environment_token_is_refused() {
    let (status, _, stderr) = ServerProc::serve()
        .env("BIGMGR_ADMIN_TOKEN", "admin")
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_contains(&stderr, "BIGMGR_ADMIN_TOKEN must be at least 16");
}

#[tokio::test]
async fn a_config_file_sets_listen_and_data_the_environment_and_flags_override_it() {
    let [from_file, from_env, from_flag] = free_addrs::<3>();
    let text = format!("listen = \"{from_file}\"\ndata = \"state\"\nheartbeat_interval = \"2s\"\n");
    let (tmp, config) = temp_file("bigmgr.toml", &text);
    let config = config.to_str().unwrap().to_string();

    let mut server = ServerProc::serve()
        .no_listen_flag()
        .no_data_flag()
        .arg("--config")
        .arg(&config)
        .start();
    assert_eq!(server.addr, from_file);
    assert!(
        tmp.path().join("state/bigmgr.db").exists(),
        "data is relative to the file"
    );
    assert!(server.stop().success());

    let mut server = ServerProc::serve()
        .no_listen_flag()
        .no_data_flag()
        .env("BIGMGR_CONFIG", &config)
        .env("BIGMGR_LISTEN", from_env.to_string())
        .start();
    assert_eq!(server.addr, from_env, "the environment beats the file");
    assert!(server.stop().success());

    let server = ServerProc::serve()
        .no_listen_flag()
        .no_data_flag()
        .arg("--config")
        .arg(&config)
        .arg("--listen")
        .arg(from_flag.to_string())
        .env("BIGMGR_LISTEN", from_env.to_string())
        .start();
    assert_eq!(server.addr, from_flag, "the flag beats the environment");
    let token = std::fs::read_to_string(tmp.path().join("state/admin-token")).unwrap();
    Api::new(&server.url, Some(token.trim().into()))
        .get("/health")
        .await
        .expect(200);
}

#[tokio::test]
async fn stack_directories_come_from_a_colon_separated_variable() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    copy_dir(
        &stacks_dir().join("demo/1.0.0/hello"),
        &a.join("mine/2.0.0/hello"),
    );
    copy_dir(
        &stacks_dir().join("demo/1.0.0/hello"),
        &b.join("theirs/3.0.0/hello"),
    );
    let server = ServerProc::serve()
        .env("BIGMGR_STACKS", format!("{}:{}", a.display(), b.display()))
        .start();
    let stacks = server.api().get("/stacks").await;
    let names: Vec<String> = stacks.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["name"].as_str().unwrap(),
                s["version"].as_str().unwrap()
            )
        })
        .collect();
    for want in ["mine 2.0.0", "theirs 3.0.0", "demo 1.0.0"] {
        assert!(
            names.contains(&want.to_string()),
            "{want} missing from {names:?}"
        );
    }
}

#[test]
fn bad_settings_exit_2_and_say_what_to_fix() {
    let (status, _, stderr) = ServerProc::serve()
        .arg("--heartbeat-interval")
        .arg("30")
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_contains(&stderr, "500ms, 30s");

    let (_tmp, config) = temp_file("bad.toml", "listn = \"127.0.0.1:1\"\n");
    let (status, _, stderr) = ServerProc::serve()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("unknown field `listn`") && stderr.contains("bad.toml"),
        "{stderr}"
    );

    let (status, _, stderr) = ServerProc::serve()
        .env("BIGMGR_LISTEN", "not-an-address")
        .no_listen_flag()
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_contains(&stderr, "not-an-address");
}
