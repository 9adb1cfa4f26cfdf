"""The official Elasticsearch Python client, unmodified, against the gateway.

usage: ES_URL=http://127.0.0.1:9200 ELASTIC_PASSWORD=... python es_client.py
"""
import os

from elasticsearch import ApiError, Elasticsearch

url, password = os.environ["ES_URL"], os.environ["ELASTIC_PASSWORD"]
es = Elasticsearch(url, basic_auth=("elastic", password))
checks = 0

assert es.info()["tagline"] == "You Know, for Search"
assert es.security.authenticate()["username"] == "elastic"
checks += 1

resp = es.security.put_user(username="jacknich", password="l0ng-r4nd0m-p@ssw0rd",
                            roles=["viewer"], full_name="Jack Nicholson")
assert resp.body == {"created": True}
profile = es.security.activate_user_profile(grant_type="password", username="jacknich",
                                            password="l0ng-r4nd0m-p@ssw0rd")
uid = profile["uid"]
assert profile["user"]["full_name"] == "Jack Nicholson"
checks += 1

es.security.update_user_profile_data(uid=uid, labels={"direction": "north"},
                                     data={"app1": {"theme": "default"}})
got = es.security.get_user_profile(uid=uid, data="app1")
assert got["profiles"][0]["labels"] == {"direction": "north"}
assert got["profiles"][0]["data"] == {"app1": {"theme": "default"}}
checks += 1

found = es.security.suggest_user_profiles(name="jack", data="app1")
assert [p["uid"] for p in found["profiles"]] == [uid]
es.security.disable_user_profile(uid=uid)
assert es.security.get_user_profile(uid=uid)["profiles"][0]["enabled"] is False
es.security.enable_user_profile(uid=uid)
checks += 1

token = es.security.get_token(grant_type="password", username="jacknich",
                              password="l0ng-r4nd0m-p@ssw0rd")
as_jack = Elasticsearch(url, bearer_auth=token["access_token"])
assert as_jack.security.authenticate()["username"] == "jacknich"
assert es.security.invalidate_token(token=token["access_token"])["invalidated_tokens"] == 1
checks += 1

try:
    es.security.update_user_profile_data(uid=uid, labels={"x": 1}, if_seq_no=0, if_primary_term=1)
    raise AssertionError("a stale if_seq_no was accepted")
except ApiError as error:
    assert error.meta.status == 409
    assert error.body["error"]["type"] == "version_conflict_engine_exception"
checks += 1

print(f"es_client.py: {checks} checks passed")
