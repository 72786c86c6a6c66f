//! Crash and restart: acknowledged pushes survive an abrupt stop (the runtime is dropped mid-fetch, no
//! graceful shutdown), the pipeline resumes from the inbox, and what was already fetched is not fetched
//! again.

mod common;

use common::*;
use std::time::Duration;
use voicewall_core::mock_wechat::{self, MockWechat, PushMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_a_crash_and_fetched_ones_are_not_refetched() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockWechat::start(APP_ID, SECRET).await.unwrap();
    let amr = hello_amr();
    let fast = ["m-fast-1", "m-fast-2"];
    let slow = ["m-slow-1", "m-slow-2", "m-slow-3"];
    for id in fast.iter().chain(slow.iter()) {
        mock.add_media(id, amr.clone(), "audio/amr");
    }
    for id in slow {
        mock.set_media_delay(id, Duration::from_secs(60));
    }

    // First life, on a runtime of its own so dropping it is a crash: every task just stops.
    let path = dir.path().to_path_buf();
    let base = mock.base_url();
    let first = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let stop = rt.block_on(async {
            let app = try_spawn_app_at(&path, &base).await.unwrap();
            for (i, id) in fast.iter().chain(slow.iter()).enumerate() {
                let xml = mock_wechat::voice_xml(
                    ORIGINAL_ID,
                    &format!("oCrash{i}"),
                    now_s(),
                    id,
                    5_000_000_000 + i as u64,
                    "",
                );
                let r = app.push(&xml, PushMode::Safe).await;
                assert_eq!(r.status(), 200, "acked = durably stored");
            }
            app.wait_wall(20, |w| with_status(w, "ready").len() == 2)
                .await;
            let w = app.wall().await;
            assert_eq!(with_status(&w, "fetching").len(), 3);
            app.abandon() // no graceful stop, no final flush
        });
        drop(rt);
        drop(stop);
    });
    first.join().unwrap();
    assert_eq!(mock.media_count("m-fast-1"), 1);
    for id in slow {
        assert_eq!(
            mock.media_count(id),
            1,
            "{id} was being fetched at the crash"
        );
        mock.set_media_delay(id, Duration::ZERO);
    }
    // The crashed instance's store goes away with its last task; retry the reopen briefly.
    let mut tries = 0;
    let app = loop {
        match try_spawn_app_at(dir.path(), &mock.base_url()).await {
            Ok(app) => break app,
            Err(e) if tries < 100 => {
                tries += 1;
                if tries == 1 {
                    eprintln!("reopen: {e}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("cannot reopen the data dir: {e}"),
        }
    };
    let wall = app
        .wait_wall(20, |w| with_status(w, "ready").len() == 5)
        .await;
    assert_eq!(message_count(&wall), 5, "every acked push, once");
    assert_eq!(wall["participants"].as_array().unwrap().len(), 5);
    for id in fast {
        assert_eq!(
            mock.media_count(id),
            1,
            "{id} was fetched before the crash: not refetched"
        );
    }
    for id in slow {
        assert_eq!(
            mock.media_count(id),
            2,
            "{id} was mid-fetch: fetched again after the restart"
        );
    }
    assert_eq!(app.state.store.inbox_len(), 0);
    app.stop().await;
}
