"""Cloud inventory importers: AWS EC2, Azure Resource Graph and Terraform state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmdb_graph.errors import InvalidRecordError
from cmdb_graph.model.records import CIRecord, Record, RelationshipRecord
from importers import get_importer
from tests.helpers.battery import run_battery
from tests.unit.importers.json_fuzz import check_mutant

REPO = Path(__file__).resolve().parents[3]
REALDATA = REPO / ".." / "shared" / "realdata"
AWS = REALDATA / "aws" / "ec2-describe-instances.json"
AZURE = REALDATA / "azure" / "resourcegraph-ResourcesFilterQuery.example.json"
TF4 = REALDATA / "terraform" / "tfstate-v4-libvirt-kvm-lab.tfstate.json"
TF3 = REPO / "tests" / "fixtures" / "importers" / "terraform_v3_aws.tfstate"

SUB = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/Shop/providers"


def _names(records: list[Record]) -> dict[str | None, str]:
    return {r.identifiers.native_key: r.name for r in records if isinstance(r, CIRecord)}


def _edges(records: list[Record]) -> set[tuple[str, str, str]]:
    names = _names(records)
    return {
        (names[r.source.native_key], r.rel_type, names[r.target.native_key])
        for r in records
        if isinstance(r, RelationshipRecord)
    }


def _write(tmp_path: Path, data: Any, name: str = "in.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2))
    return path


# -- AWS ----------------------------------------------------------------------------------------
def test_aws_real_instance_network_and_placement() -> None:
    # Arrange / Act
    records = list(get_importer("aws-ec2").parse(AWS))

    # Assert
    cis = {(r.ci_class, r.name) for r in records if isinstance(r, CIRecord)}
    assert cis == {
        ("VirtualMachine", "test"),
        ("Network", "subnet-0a862bc92237aee82"),
        ("Network", "vpc-05831f9e51be19737"),
        ("Datacenter", "us-east-1a"),
        ("Datacenter", "us-east-1"),
    }
    assert _edges(records) == {
        ("test", "CONNECTS_TO", "subnet-0a862bc92237aee82"),
        ("subnet-0a862bc92237aee82", "CONNECTS_TO", "vpc-05831f9e51be19737"),
        ("test", "HOSTED_ON", "us-east-1a"),
        ("us-east-1a", "LOCATED_IN", "us-east-1"),
    }
    vm = next(r for r in records if isinstance(r, CIRecord) and r.name == "test")
    assert vm.identifiers.cloud_id == "i-04eab418fd95d0cc7"
    assert vm.identifiers.fqdn == "ip-172-31-34-119.ec2.internal"
    assert vm.identifiers.mac_addresses == ("0e:9b:bf:fe:55:91",)
    assert vm.attributes["ip_addresses"] == ["172.31.34.119", "203.0.113.42"]
    assert vm.attributes["operational_status"] == "operational"
    assert vm.attributes["aws_account"] == "111122223333"


def test_aws_stopped_instance_without_name_and_two_subnets(tmp_path: Path) -> None:
    # Arrange
    data = {"Reservations": [{"OwnerId": "1", "Instances": [{
        "InstanceId": "i-1", "State": {"Name": "stopped"}, "SubnetId": "subnet-a",
        "VpcId": "vpc-1", "Placement": {"AvailabilityZone": "eu-west-2b"},
        "Tags": [{"Key": "Environment", "Value": "prod"}],
        "NetworkInterfaces": [
            {"MacAddress": "0A:00:00:00:00:01", "SubnetId": "subnet-a", "VpcId": "vpc-1"},
            {"MacAddress": "0a:00:00:00:00:02", "SubnetId": "subnet-b", "VpcId": "vpc-1",
             "PrivateIpAddresses": [{"PrivateIpAddress": "10.1.2.3"}]},
        ],
    }]}]}

    # Act
    records = list(get_importer("aws-ec2").parse(_write(tmp_path, data)))

    # Assert
    vm = next(r for r in records if isinstance(r, CIRecord) and r.ci_class == "VirtualMachine")
    assert vm.name == "i-1"
    assert vm.attributes["operational_status"] == "non_operational"
    assert vm.attributes["environment"] == "prod"
    assert vm.identifiers.mac_addresses == ("0a:00:00:00:00:01", "0a:00:00:00:00:02")
    assert vm.identifiers.fqdn is None
    assert _edges(records) == {
        ("i-1", "CONNECTS_TO", "subnet-a"),
        ("i-1", "CONNECTS_TO", "subnet-b"),
        ("subnet-a", "CONNECTS_TO", "vpc-1"),
        ("subnet-b", "CONNECTS_TO", "vpc-1"),
        ("i-1", "HOSTED_ON", "eu-west-2b"),
        ("eu-west-2b", "LOCATED_IN", "eu-west-2"),
    }


def test_aws_bad_input_battery(tmp_path: Path) -> None:
    valid = json.dumps({"Reservations": [{"Instances": [
        {"InstanceId": "i-9", "State": {"Name": "running"}, "SubnetId": "subnet-9",
         "VpcId": "vpc-9", "Tags": [{"Key": "Name", "Value": "db"}]}]}]}, indent=2).encode()
    run_battery(
        get_importer("aws-ec2"),
        valid,
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda d: d.replace(b'"InstanceId": "i-9",', b""),
        required_field="InstanceId",
    )


# -- Azure --------------------------------------------------------------------------------------
def test_azure_real_api_example_three_vms() -> None:
    # Arrange / Act
    records = list(get_importer("azure-resource-graph").parse(AZURE))

    # Assert
    cis = {(r.ci_class, r.name) for r in records if isinstance(r, CIRecord)}
    assert cis == {
        ("VirtualMachine", "myVm1"),
        ("VirtualMachine", "myVirtualMachine"),
        ("VirtualMachine", "testVm"),
        ("Datacenter", "centralus"),
        ("Datacenter", "eastus"),
    }
    assert _edges(records) == {
        ("myVm1", "HOSTED_ON", "centralus"),
        ("myVirtualMachine", "HOSTED_ON", "eastus"),
        ("testVm", "HOSTED_ON", "eastus"),
    }
    vm = next(r for r in records if isinstance(r, CIRecord) and r.name == "myVm1")
    assert vm.identifiers.cloud_id == (
        "/subscriptions/cfbbd179-59d2-4052-aa06-9270a38aa9d6/resourcegroups/rg1/providers/"
        "microsoft.compute/virtualmachines/myvm1"
    )
    assert vm.attributes["resource_group"] == "RG1"
    assert vm.origin.record == "/responses/200/body/data/0"


def test_azure_table_format_and_inferred_references(tmp_path: Path) -> None:
    # Arrange: the REST "table" result format with a VM, its NIC, the vnet and a disk
    vm, nic = f"{SUB}/Microsoft.Compute/virtualMachines/web1", \
        f"{SUB}/Microsoft.Network/networkInterfaces/web1-nic"
    vnet, disk = f"{SUB}/Microsoft.Network/virtualNetworks/shop-vnet", \
        f"{SUB}/Microsoft.Compute/disks/web1-os"
    data = {"totalRecords": 4, "count": 4, "resultTruncated": "false", "data": {
        "columns": [{"name": "id", "type": "string"}, {"name": "name", "type": "string"},
                    {"name": "type", "type": "string"}, {"name": "location", "type": "string"},
                    {"name": "tags", "type": "object"}, {"name": "properties", "type": "object"}],
        "rows": [
            [vm, "web1", "microsoft.compute/virtualmachines", "westeurope", {"env": "prod"},
             {"networkProfile": {"networkInterfaces": [{"id": nic.upper()}]},
              "storageProfile": {"osDisk": {"managedDisk": {"id": disk}}}}],
            [nic, "web1-nic", "microsoft.network/networkinterfaces", "westeurope", None,
             {"ipConfigurations": [{"properties": {"subnet": {"id": f"{vnet}/subnets/app"}}}]}],
            [vnet, "shop-vnet", "microsoft.network/virtualnetworks", "westeurope", None, {}],
            [disk, "web1-os", "microsoft.compute/disks", "westeurope", None,
             {"managedBy": vm}],
        ]}}

    # Act
    records = list(get_importer("azure-resource-graph").parse(_write(tmp_path, data)))

    # Assert
    assert {(r.name, r.ci_class) for r in records if isinstance(r, CIRecord)} == {
        ("web1", "VirtualMachine"), ("web1-nic", "CloudResource"),
        ("shop-vnet", "Network"), ("web1-os", "CloudResource"), ("westeurope", "Datacenter"),
    }
    inferred = {(s, t, o) for s, t, o in _edges(records) if t in ("DEPENDS_ON", "CONNECTS_TO")}
    assert inferred == {
        ("web1", "DEPENDS_ON", "web1-nic"),  # id in other case: Azure ids are case-insensitive
        ("web1", "DEPENDS_ON", "web1-os"),
        ("web1-nic", "CONNECTS_TO", "shop-vnet"),  # a subnet id lies under its vnet
        ("web1-os", "DEPENDS_ON", "web1"),  # properties.managedBy
    }
    rel = next(r for r in records if isinstance(r, RelationshipRecord)
               and r.rel_type == "CONNECTS_TO")
    assert rel.inferred and rel.evidence is not None
    assert rel.evidence.startswith("properties.ipConfigurations[0].properties.subnet.id = ")
    web1 = next(r for r in records if isinstance(r, CIRecord) and r.name == "web1")
    assert web1.attributes["environment"] == "prod"


def test_azure_row_without_type_names_row(tmp_path: Path) -> None:
    # Arrange
    path = _write(tmp_path, {"data": [{"id": f"{SUB}/x/y/z", "type": "a/b"},
                                      {"id": f"{SUB}/x/y/w"}]})

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("azure-resource-graph").parse(path))

    # Assert
    assert (info.value.record, info.value.field) == ("/data/1", "type")


def test_azure_bad_input_battery(tmp_path: Path) -> None:
    valid = json.dumps({"count": 1, "data": [
        {"id": f"{SUB}/Microsoft.Compute/virtualMachines/vm1", "name": "vm1",
         "type": "microsoft.compute/virtualmachines", "location": "westeurope"}]},
        indent=2).encode()
    run_battery(
        get_importer("azure-resource-graph"),
        valid,
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda d: d.replace(b'"type": "microsoft.compute/virtualmachines",',
                                             b""),
        required_field="type",
    )


# -- Terraform ----------------------------------------------------------------------------------
def test_terraform_v4_real_libvirt_lab() -> None:
    # Arrange / Act
    records = list(get_importer("terraform").parse(TF4))

    # Assert: the two template_file data sources are no CIs
    cis = {(r.ci_class, r.name) for r in records if isinstance(r, CIRecord)}
    assert cis == {
        ("VirtualMachine", "centos-vm1"),
        ("Network", "terraform_network"),
        ("CloudResource", "terraform_pool"),
        ("CloudResource", "centos_template"),
        ("CloudResource", "centos-vm1_disk"),
        ("CloudResource", "centos-vm1_cloudinit.iso"),
    }
    assert _edges(records) == {
        ("centos-vm1", "DEPENDS_ON", "centos-vm1_cloudinit.iso"),
        ("centos-vm1", "DEPENDS_ON", "terraform_network"),
        ("centos-vm1", "DEPENDS_ON", "centos-vm1_disk"),
        ("centos-vm1_cloudinit.iso", "DEPENDS_ON", "terraform_pool"),
        ("centos_template", "DEPENDS_ON", "terraform_pool"),
        ("centos-vm1_disk", "DEPENDS_ON", "terraform_pool"),
        ("centos-vm1_disk", "DEPENDS_ON", "centos_template"),
    }
    vm = next(r for r in records if isinstance(r, CIRecord) and r.name == "centos-vm1")
    assert vm.identifiers.cloud_id == "a4a1c4fc-1217-47ed-a5d4-380a1fdcbc08"
    assert vm.identifiers.native_key == (
        '7fb0cf1a-fc2f-5a9d-fe16-8475179bc05f:libvirt_domain.vms["centos-vm1"]')
    assert vm.identifiers.mac_addresses == ("52:54:00:f2:bd:a6",)
    assert vm.identifiers.hostname == "centos-vm1"
    assert vm.attributes["ip_addresses"] == ["10.10.1.11"]
    net = next(r for r in records if isinstance(r, CIRecord) and r.ci_class == "Network")
    assert net.attributes["cidr"] == "10.10.1.0/24"
    assert all(r.inferred and r.evidence for r in records if isinstance(r, RelationshipRecord))


def test_terraform_v3_modules_counts_and_data_sources() -> None:
    # Arrange / Act
    records = list(get_importer("terraform").parse(TF3))

    # Assert
    cis = {(r.ci_class, r.name) for r in records if isinstance(r, CIRecord)}
    assert cis == {
        ("Network", "main-vpc"),
        ("Network", "aws_subnet.app"),
        ("VirtualMachine", "web-0"),
        ("VirtualMachine", "web-1"),
        ("CloudResource", "web-sg"),
        ("CloudResource", "example-logs"),
        ("CloudResource", "module.storage.aws_kms_key.logs"),
        # not random_id.suffix, not data.aws_ami.ubuntu
    }
    assert _edges(records) == {
        ("aws_subnet.app", "DEPENDS_ON", "main-vpc"),
        ("web-0", "DEPENDS_ON", "aws_subnet.app"),
        ("web-0", "DEPENDS_ON", "web-sg"),
        ("web-1", "DEPENDS_ON", "aws_subnet.app"),
        ("web-1", "DEPENDS_ON", "web-sg"),
        ("web-sg", "DEPENDS_ON", "main-vpc"),
        # depends_on inside module "storage" is relative to that module
        ("example-logs", "DEPENDS_ON", "module.storage.aws_kms_key.logs"),
    }
    web0 = next(r for r in records if isinstance(r, CIRecord) and r.name == "web-0")
    assert web0.identifiers.cloud_id == "i-0web0"
    assert web0.identifiers.fqdn == "ip-10-0-1-10.eu-west-1.compute.internal"
    assert web0.attributes["terraform_address"] == "aws_instance.web[0]"


def test_terraform_v4_modules_and_dependencies(tmp_path: Path) -> None:
    # Arrange: Terraform 1.x shape (instance "dependencies", module-qualified)
    state = {"version": 4, "terraform_version": "1.7.5", "serial": 3, "lineage": "L",
             "outputs": {}, "resources": [
        {"module": "module.net", "mode": "managed", "type": "google_compute_network",
         "name": "vpc", "provider": "provider[\"registry.terraform.io/hashicorp/google\"]",
         "instances": [{"schema_version": 0, "attributes": {"id": "projects/p/net/vpc",
                                                            "name": "vpc"}}]},
        {"mode": "managed", "type": "google_compute_instance", "name": "app",
         "provider": "provider[\"registry.terraform.io/hashicorp/google\"]",
         "instances": [{"index_key": "blue", "schema_version": 6,
                        "attributes": {"id": "projects/p/zones/z/instances/app-blue",
                                       "name": "app-blue"},
                        "dependencies": ["module.net.google_compute_network.vpc",
                                         "random_id.x"]}]},
        {"mode": "managed", "type": "random_id", "name": "x", "provider": "p",
         "instances": [{"attributes": {"id": "abc"}}]},
        # resource-level depends_on (states upgraded from 0.11)
        {"mode": "managed", "type": "google_storage_bucket", "name": "assets", "provider": "p",
         "depends_on": ["google_compute_instance.app"],
         "instances": [{"attributes": {"id": "assets", "name": "shop-assets"}}]},
    ]}

    # Act
    records = list(get_importer("terraform").parse(_write(tmp_path, state, "tf.tfstate")))

    # Assert
    assert _edges(records) == {
        ("app-blue", "DEPENDS_ON", "vpc"),  # random_id.x is no CI: that edge is dropped
        ("shop-assets", "DEPENDS_ON", "app-blue"),  # to every instance of the resource
    }
    assert set(_names(records)) == {
        "L:module.net.google_compute_network.vpc", 'L:google_compute_instance.app["blue"]',
        "L:google_storage_bucket.assets"}


def test_terraform_unsupported_version(tmp_path: Path) -> None:
    # Arrange
    path = _write(tmp_path, {"version": 5, "resources": []})

    # Act
    with pytest.raises(InvalidRecordError) as info:
        list(get_importer("terraform").parse(path))

    # Assert
    assert (info.value.file, info.value.field) == (str(path), "version")


def test_terraform_bad_input_battery(tmp_path: Path) -> None:
    valid = json.dumps({"version": 4, "lineage": "L", "resources": [
        {"mode": "managed", "type": "aws_vpc", "name": "main",
         "instances": [{"attributes": {"id": "vpc-1", "cidr_block": "10.0.0.0/16"}}]}]},
        indent=2).encode()
    run_battery(
        get_importer("terraform"),
        valid,
        fmt="json",
        tmp_path=tmp_path,
        missing_required=lambda d: d.replace(b'"type": "aws_vpc",', b""),
        required_field="type",
    )


@pytest.mark.parametrize(
    ("kind", "path"),
    [("aws-ec2", AWS), ("azure-resource-graph", AZURE), ("terraform", TF4), ("terraform", TF3)],
)
def test_any_value_anywhere_gives_records_or_one_clear_error(kind: str, path: Path) -> None:
    document = json.loads(path.read_text())

    @settings(max_examples=100, deadline=None)
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        check_mutant(get_importer(kind), document, data)

    check()
