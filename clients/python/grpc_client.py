"""grpcio against the gRPC port, with stubs generated from proto/ and the google.rpc error
details read with grpcio-status.

usage: GRPC_ADDR=127.0.0.1:50051 ELASTIC_PASSWORD=... python grpc_client.py
"""
import base64
import importlib
import importlib.resources
import os
import pathlib
import sys
import tempfile

import grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from grpc_tools import protoc

proto_dir = pathlib.Path(__file__).resolve().parent.parent.parent / "proto"
out = tempfile.mkdtemp()
protos = [str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto")]
well_known = importlib.resources.files("grpc_tools") / "_proto"
command = ["protoc", f"-I{proto_dir}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}"]
assert protoc.main([*command, *protos]) == 0
sys.path.insert(0, out)
pb = importlib.import_module("userprofiles.v1.user_profiles_pb2")
pb_grpc = importlib.import_module("userprofiles.v1.user_profiles_pb2_grpc")
sec = importlib.import_module("userprofiles.v1.security_pb2")
sec_grpc = importlib.import_module("userprofiles.v1.security_pb2_grpc")


def auth(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [("authorization", f"Basic {token}")]


admin = auth("elastic", os.environ["ELASTIC_PASSWORD"])
channel = grpc.insecure_channel(os.environ["GRPC_ADDR"])
profiles = pb_grpc.UserProfilesStub(channel)
users = sec_grpc.UsersStub(channel)
checks = 0

users.PutUser(sec.PutUserRequest(username="grpcuser", password="l0ng-r4nd0m-p@ssw0rd",
                                 roles=["viewer"], full_name="Grace Hopper"), metadata=admin)
profile = profiles.Activate(pb.ActivateRequest(grant_type="password", username="grpcuser",
                                               password="l0ng-r4nd0m-p@ssw0rd"), metadata=admin)
assert profile.user.full_name == "Grace Hopper"
checks += 1

labels = struct_pb2.Struct()
labels.update({"team": "compilers"})
profiles.UpdateProfileData(pb.UpdateProfileDataRequest(uid=profile.uid, labels=labels), metadata=admin)
got = profiles.GetProfiles(pb.GetProfilesRequest(uids=[profile.uid]), metadata=admin)
assert got.profiles[0].labels["team"] == "compilers"
checks += 1

try:
    profiles.Activate(pb.ActivateRequest(grant_type="password", username="grpcuser"), metadata=admin)
    raise AssertionError("an activation without a password was accepted")
except grpc.RpcError as error:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details if d.Is(info.DESCRIPTOR))
    assert info.reason == "action_request_validation_exception"
checks += 1

print(f"grpc_client.py: {checks} checks passed")
