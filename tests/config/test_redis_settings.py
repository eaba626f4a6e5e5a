"""Redis from the environment: one server, several shards or Sentinel-managed masters; a bad or
contradictory value stops the process with the variable's name (config/env.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import cache_for, env_redis_shards
from tests.support.liveserver import ROOT, base_env

REDIS_VARIABLES = (
    "REDIS_URL",
    "REDIS_URLS",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_PASSWORD",
    "REDIS_DB",
)


@pytest.fixture
def redis_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in REDIS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_redis_variable_means_no_shard(redis_env: pytest.MonkeyPatch) -> None:
    assert env_redis_shards() == []


def test_redis_url_keeps_working_as_one_shard(redis_env: pytest.MonkeyPatch) -> None:
    redis_env.setenv("REDIS_URL", "redis://cache:6379/0")
    assert env_redis_shards() == [{"url": "redis://cache:6379/0"}]


def test_redis_urls_give_one_shard_each_in_their_order(redis_env: pytest.MonkeyPatch) -> None:
    redis_env.setenv("REDIS_URLS", " redis://a:6379/0, rediss://:secret@b:6380/2 ,")
    assert env_redis_shards() == [{"url": "redis://a:6379/0"}, {"url": "rediss://:secret@b:6380/2"}]


def test_sentinels_give_one_shard_per_master_name(redis_env: pytest.MonkeyPatch) -> None:
    redis_env.setenv("REDIS_SENTINELS", "s1:26379,10.0.0.2:26380,[::1]:26381")
    redis_env.setenv("REDIS_SENTINEL_MASTER", "trading-a,trading-b")
    redis_env.setenv("REDIS_PASSWORD", "pw")
    redis_env.setenv("REDIS_SENTINEL_PASSWORD", "spw")
    redis_env.setenv("REDIS_DB", "3")
    sentinels = [("s1", 26379), ("10.0.0.2", 26380), ("::1", 26381)]
    assert env_redis_shards() == [
        {"sentinels": sentinels, "master_name": name, "password": "pw", "sentinel_password": "spw", "db": 3}
        for name in ("trading-a", "trading-b")
    ]


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"REDIS_URL": "cache:6379"}, "REDIS_URL"),
        ({"REDIS_URLS": "redis://a:6379/0,http://b"}, "REDIS_URLS"),
        ({"REDIS_URLS": "redis://a:6379/0,redis://a:6379/0"}, "distinct URLs"),
        ({"REDIS_URL": "redis://a:6379/0", "REDIS_URLS": "redis://b:6379/0"}, "only one of"),
        ({"REDIS_URL": "redis://a:6379/0", "REDIS_SENTINELS": "s:26379"}, "only one of"),
        ({"REDIS_SENTINELS": "s:26379"}, "REDIS_SENTINEL_MASTER"),
        ({"REDIS_SENTINELS": "s", "REDIS_SENTINEL_MASTER": "m"}, "host:port"),
        ({"REDIS_SENTINELS": "s:99999", "REDIS_SENTINEL_MASTER": "m"}, "host:port"),
        ({"REDIS_SENTINELS": "s:26379", "REDIS_SENTINEL_MASTER": "m,m"}, "distinct master names"),
        ({"REDIS_SENTINELS": "s:26379", "REDIS_SENTINEL_MASTER": "m", "REDIS_DB": "-1"}, "REDIS_DB"),
        ({"REDIS_URL": "redis://a:6379/0", "REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINEL_MASTER is set"),
        ({"REDIS_URLS": "redis://a:6379/0", "REDIS_PASSWORD": "pw"}, "REDIS_PASSWORD is set"),
    ],
)
def test_a_bad_or_contradictory_redis_setting_is_refused_by_name(
    redis_env: pytest.MonkeyPatch, env: dict[str, str], complaint: str
) -> None:
    for name, value in env.items():
        redis_env.setenv(name, value)
    with pytest.raises(ImproperlyConfigured, match=complaint):
        env_redis_shards()


def test_a_refused_url_does_not_show_its_password(redis_env: pytest.MonkeyPatch) -> None:
    redis_env.setenv("REDIS_URLS", "redis://:hunter2@a:6379/0,redis://:hunter2@a:6379/0")
    with pytest.raises(ImproperlyConfigured) as refused:
        env_redis_shards()
    assert "hunter2" not in str(refused.value)


def test_the_first_shard_becomes_the_cache_by_url_or_through_its_sentinels() -> None:
    by_url = {"url": "redis://a:6379/0"}
    by_sentinel = {
        "sentinels": [("s1", 26379)],
        "master_name": "m",
        "password": "pw",
        "sentinel_password": None,
        "db": 1,
    }
    assert cache_for(by_url, key_prefix="p")["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert cache_for(by_sentinel, key_prefix="p")["BACKEND"] == "sessions_app.realtime.redis_clients.SentinelRedisCache"


PRODUCTION = {
    "SERVICE_MODE": "production",
    "SECRET_KEY": "k" * 50,
    "ALLOWED_HOSTS": "example.com",
    "DATABASE_URL": "postgres://u:p@db:5432/app",
}


def layer_settings(**env: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        "print(json.dumps([settings.CHANNEL_LAYERS['default']['CONFIG']['shards'], "
        "settings.CACHES['default']['BACKEND']]))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base_env(**env), capture_output=True, text=True, timeout=60
    )


def test_production_starts_with_shards_or_sentinels_and_configures_the_layer_for_each() -> None:
    sharded = layer_settings(**PRODUCTION, REDIS_URL="", REDIS_URLS="redis://a:6379/0,redis://b:6379/0")
    assert sharded.returncode == 0, sharded.stderr
    shards, cache = json.loads(sharded.stdout)
    assert [shard["url"] for shard in shards] == ["redis://a:6379/0", "redis://b:6379/0"]
    assert cache == "django.core.cache.backends.redis.RedisCache"
    watched = layer_settings(**PRODUCTION, REDIS_URL="", REDIS_SENTINELS="s1:26379,s2:26379", REDIS_SENTINEL_MASTER="m")
    assert watched.returncode == 0, watched.stderr
    shards, cache = json.loads(watched.stdout)
    assert [(shard["master_name"], shard["sentinels"]) for shard in shards] == [("m", [["s1", 26379], ["s2", 26379]])]
    assert cache.endswith("SentinelRedisCache")


def test_production_without_any_redis_names_every_way_to_configure_one() -> None:
    result = layer_settings(**PRODUCTION, REDIS_URL="")
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr and "REDIS_URLS" in result.stderr and "REDIS_SENTINELS" in result.stderr
