"""The server judges connection quality from heartbeat lateness, not from what the client claims."""

from sessions_app.realtime.quality import QualityJudge


def feed(judge: QualityJudge, arrivals: list[float]) -> list[str]:
    return [judge.observe(at) for at in arrivals]


def test_punctual_heartbeats_are_good() -> None:
    assert feed(QualityJudge(1000), [0, 1000, 2010, 3000, 4100]) == ["good"] * 5


def test_a_late_beat_is_degraded_and_a_missed_beat_is_poor() -> None:
    judge = QualityJudge(1000)
    assert feed(judge, [0, 1000, 2500]) == ["good", "good", "degraded"]
    assert judge.observe(4600) == "poor"


def test_quality_recovers_after_a_few_punctual_beats() -> None:
    judge = QualityJudge(1000)
    feed(judge, [0, 3000])
    assert feed(judge, [4000, 5000, 6000, 7000]) == ["poor", "poor", "poor", "good"]


def test_beats_faster_than_the_interval_are_good() -> None:
    assert feed(QualityJudge(1000), [0, 200, 400, 600]) == ["good"] * 4
