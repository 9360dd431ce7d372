pytest_plugins = ["tests.fixtures.databases", "tests.fixtures.app", "tests.fixtures.simulator", "tests.fixtures.live",
                  "tests.fixtures.redis_server"]
