"""Passwords are stored as argon2id hashes that verify the right password and nothing else."""

from __future__ import annotations

from argon2 import PasswordHasher

from flowloom.passwords import hash_password, needs_rehash, verify_password


def test_hash_is_argon2id_and_verifies_only_the_right_password() -> None:
    stored = hash_password("correct horse battery staple")

    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery staple")
    assert not verify_password(stored, "correct horse battery stapl")
    assert not verify_password(stored, "")


def test_same_password_hashes_differently_each_time() -> None:
    first, second = hash_password("hunter2"), hash_password("hunter2")

    assert first != second
    assert verify_password(first, "hunter2")
    assert verify_password(second, "hunter2")


def test_a_stored_value_that_is_not_a_hash_never_verifies() -> None:
    for garbage in ("", "hunter2", "$argon2id$v=19$broken", "$2b$12$notargon"):
        assert not verify_password(garbage, "hunter2")
        assert needs_rehash(garbage)


def test_hashes_made_with_weaker_settings_ask_to_be_rehashed() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("hunter2")

    assert verify_password(weak, "hunter2")
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("hunter2"))
