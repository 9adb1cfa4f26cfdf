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

# Application privileges and the has-privileges checks, as Kibana uses them.
resp = es.security.put_privileges(privileges={
    "myapp": {"read": {"actions": ["data:read/*", "action:login"]},
              "write": {"actions": ["data:write/*"]}},
})
assert resp.body == {"myapp": {"read": {"created": True}, "write": {"created": True}}}, resp.body
got = es.security.get_privileges(application="myapp", name="read")
assert got.body == {"myapp": {"read": {"application": "myapp", "name": "read",
                                       "actions": ["data:read/*", "action:login"],
                                       "metadata": {}}}}, got.body
checks += 1

es.security.put_role(name="myapp_reader", applications=[
    {"application": "myapp", "privileges": ["read"], "resources": ["doc/*"]}])
es.security.put_user(username="reader", password="r3ader-p@ssw0rd-long", roles=["myapp_reader"])
reader_uid = es.security.activate_user_profile(grant_type="password", username="reader",
                                               password="r3ader-p@ssw0rd-long")["uid"]
result = es.security.has_privileges_user_profile(
    uids=[reader_uid, uid, "u_missing_0"],
    privileges={"application": [{"application": "myapp", "privileges": ["read"],
                                 "resources": ["doc/1"]}]})
assert result["has_privilege_uids"] == [reader_uid], result.body
assert result["errors"]["details"]["u_missing_0"]["type"] == "resource_not_found_exception"
checks += 1

as_reader = Elasticsearch(url, basic_auth=("reader", "r3ader-p@ssw0rd-long"))
mine = as_reader.security.has_privileges(
    cluster=["monitor"],
    application=[{"application": "myapp", "privileges": ["read", "write"],
                  "resources": ["doc/1"]}])
assert mine["username"] == "reader"
assert mine["has_all_requested"] is False
assert mine["cluster"] == {"monitor": False}
assert mine["application"] == {"myapp": {"doc/1": {"read": True, "write": False}}}, mine.body
assert es.security.delete_privileges(application="myapp", name="write")["myapp"]["write"]["found"]
checks += 1

print(f"es_client.py: {checks} checks passed")
