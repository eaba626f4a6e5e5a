import pytest

from market_app.realism import DEFAULT_PROFILE, PROFILES, ProfileName, realism_of


def test_every_profile_name_has_a_profile_of_that_name():
    assert set(PROFILES) == set(ProfileName)
    assert all(profile.name == name for name, profile in PROFILES.items())


def test_no_profile_means_the_realistic_one():
    assert DEFAULT_PROFILE == ProfileName.REALISTIC
    assert realism_of(None) is PROFILES[ProfileName.REALISTIC]


def test_ideal_has_no_frictions_and_harsh_has_more_than_realistic():
    ideal, realistic, harsh = (realism_of(name) for name in ("ideal", "realistic", "harsh"))
    assert ideal.frictionless and ideal.latency_ms == 0 and ideal.fee_factor == 0
    assert not realistic.frictionless and not harsh.frictionless
    assert harsh.spread_factor > realistic.spread_factor
    assert harsh.depth_factor < realistic.depth_factor
    assert harsh.latency_ms > realistic.latency_ms
    assert harsh.fee_factor > realistic.fee_factor


def test_an_unknown_profile_name_is_refused():
    with pytest.raises(ValueError):
        realism_of("lenient")


def test_the_simulators_profile_choices_are_the_realism_profiles() -> None:
    from simulator_app.models import DEFAULT_PROFILE as SIMULATOR_DEFAULT
    from simulator_app.models import SimulatorProfile

    assert set(SimulatorProfile.values) == {name.value for name in ProfileName}
    assert SIMULATOR_DEFAULT.value == DEFAULT_PROFILE.value
