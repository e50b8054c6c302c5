"""Users and API keys in the store: validation, the last admin, hashing, disabling, rotation."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store.api_keys import (
    authenticate_api_key,
    create_api_key,
    disable_api_key,
    hash_api_key,
    list_api_keys,
    rotate_api_key,
)
from store.database import Store
from store.errors import (
    ApiKeyNotFoundError,
    InvalidApiKeyError,
    InvalidApiKeyNameError,
    InvalidRoleError,
    InvalidUsernameError,
    LastAdminError,
    UserExistsError,
    UserNotFoundError,
)
from store.schema import ApiKey, User
from store.users import (
    count_users,
    create_user,
    find_credentials,
    get_user,
    list_users,
    set_password_hash,
    set_user_active,
)


def test_users_are_created_listed_and_found(fake_store: Store):
    assert count_users(fake_store) == 0
    bob = create_user(fake_store, "bob", "hash-b", "operator")
    create_user(fake_store, "alice@bank", "hash-a", "auditor")
    assert [user.username for user in list_users(fake_store)] == ["alice@bank", "bob"]
    assert get_user(fake_store, bob.id) == bob and bob.active and bob.role == "operator"
    found = find_credentials(fake_store, "bob")
    assert found is not None and found[1] == "hash-b"
    assert find_credentials(fake_store, "nobody") is None and get_user(fake_store, 999) is None
    set_password_hash(fake_store, bob.id, "hash-new")
    assert find_credentials(fake_store, "bob")[1] == "hash-new"  # type: ignore[index]
    with pytest.raises(UserNotFoundError):
        set_password_hash(fake_store, 999, "x")


@pytest.mark.parametrize("name", ["", " bob", "bob smith", "-bob", "x" * 101, "b'; drop"])
def test_bad_user_names_are_refused(fake_store: Store, name: str):
    with pytest.raises(InvalidUsernameError):
        create_user(fake_store, name, "h", "operator")
    assert count_users(fake_store) == 0


def test_unknown_role_and_duplicate_name_are_refused(fake_store: Store):
    with pytest.raises(InvalidRoleError):
        create_user(fake_store, "carol", "h", "root")
    create_user(fake_store, "carol", "h", "admin")
    with pytest.raises(UserExistsError):
        create_user(fake_store, "carol", "h2", "operator")
    assert count_users(fake_store) == 1


def test_the_last_active_admin_cannot_be_disabled(fake_store: Store):
    first = create_user(fake_store, "root1", "h", "admin")
    operator = create_user(fake_store, "op", "h", "operator")
    with pytest.raises(LastAdminError):
        set_user_active(fake_store, first.id, False)
    assert not set_user_active(fake_store, operator.id, False).active
    second = create_user(fake_store, "root2", "h", "admin")
    assert not set_user_active(fake_store, first.id, False).active
    with pytest.raises(LastAdminError):
        set_user_active(fake_store, second.id, False)
    assert set_user_active(fake_store, first.id, True).active
    with pytest.raises(UserNotFoundError):
        set_user_active(fake_store, 999, True)


def test_api_key_is_stored_hashed_and_authenticates(fake_store: Store):
    user = create_user(fake_store, "integrator", "h", "operator")
    record, secret = create_api_key(fake_store, user.id, "scanner")
    assert secret.startswith("svk_") and len(secret) > 40 and record.key_prefix == secret[:12]
    with fake_store.sessions() as session:
        stored = session.scalars(select(ApiKey)).one()
        assert stored.key_hash == hash_api_key(secret) and secret not in stored.key_hash
    found_user, found_key = authenticate_api_key(fake_store, secret)
    assert found_user.username == "integrator" and found_key.id == record.id
    assert list_api_keys(fake_store)[0].last_used_at is not None
    with pytest.raises(InvalidApiKeyError):
        authenticate_api_key(fake_store, secret + "x")


def test_disabled_key_and_disabled_user_fail(fake_store: Store):
    user = create_user(fake_store, "integrator", "h", "operator")
    first, first_secret = create_api_key(fake_store, user.id, "one")
    _, second_secret = create_api_key(fake_store, user.id, "two")
    assert not disable_api_key(fake_store, first.id).active
    with pytest.raises(InvalidApiKeyError, match="disabled"):
        authenticate_api_key(fake_store, first_secret)
    authenticate_api_key(fake_store, second_secret)
    with fake_store.transaction() as session:
        session.scalars(select(User)).one().active = False
    with pytest.raises(InvalidApiKeyError):
        authenticate_api_key(fake_store, second_secret)
    with pytest.raises(ApiKeyNotFoundError):
        disable_api_key(fake_store, 999)


def test_rotation_disables_the_old_key_and_keeps_name_and_owner(fake_store: Store):
    user = create_user(fake_store, "integrator", "h", "auditor")
    old, old_secret = create_api_key(fake_store, user.id, "reports")
    new, new_secret = rotate_api_key(fake_store, old.id)
    assert (new.name, new.user_id) == ("reports", user.id) and new.id != old.id and new_secret != old_secret
    with pytest.raises(InvalidApiKeyError):
        authenticate_api_key(fake_store, old_secret)
    assert authenticate_api_key(fake_store, new_secret)[0].role == "auditor"
    keys = list_api_keys(fake_store)
    assert [key.active for key in keys] == [True, False]
    with pytest.raises(ApiKeyNotFoundError):
        rotate_api_key(fake_store, 999)


def test_api_key_names_and_owners_are_checked(fake_store: Store):
    user = create_user(fake_store, "integrator", "h", "operator")
    with pytest.raises(InvalidApiKeyNameError):
        create_api_key(fake_store, user.id, "  ")
    with pytest.raises(UserNotFoundError):
        create_api_key(fake_store, 999, "name")
