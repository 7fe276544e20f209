import * as ec2 from 'aws-cdk-lib/aws-ec2';

/**
 * The private subnets the library places its resources in: the VPC's private subnets with egress
 * if it has any (an organization's VPC that reaches AWS APIs through NAT), otherwise its isolated
 * subnets (a VPC that reaches them through VPC endpoints). Never public ones.
 */
export function defaultPrivateSubnets(vpc: ec2.IVpc): ec2.SubnetSelection {
  return { subnetType: vpc.privateSubnets.length > 0 ? ec2.SubnetType.PRIVATE_WITH_EGRESS : ec2.SubnetType.PRIVATE_ISOLATED };
}

/**
 * Selects `selection` (or the default private subnets) of `vpc`, refusing public subnets: a data
 * store must not sit in one, and a function or model there gets no public IP, hence no route out.
 * `where` and `prop` name the construct and the prop in the message.
 */
export function selectPrivateSubnets(vpc: ec2.IVpc, selection: ec2.SubnetSelection | undefined, where: string, prop = 'vpcSubnets'): ec2.SelectedSubnets {
  const selected = vpc.selectSubnets(selection ?? defaultPrivateSubnets(vpc));
  const publicIds = new Set(vpc.publicSubnets.map((s) => s.subnetId));
  const offending = selected.subnets.filter((s) => publicIds.has(s.subnetId));
  if (offending.length > 0 || selection?.subnetType === ec2.SubnetType.PUBLIC) {
    throw new Error(`${where}: ${prop} selects public subnets; select private ones (SubnetType.PRIVATE_WITH_EGRESS or PRIVATE_ISOLATED): `
      + 'the library never places a data store, a function or a model in a public subnet');
  }
  return selected;
}

/** Whether every subnet of `selected` is an isolated subnet of `vpc` (no route to the internet, hence none to AWS APIs without VPC endpoints). */
export function withoutEgress(vpc: ec2.IVpc, selected: ec2.SelectedSubnets): boolean {
  const isolated = new Set(vpc.isolatedSubnets.map((s) => s.subnetId));
  return selected.subnets.length > 0 && selected.subnets.every((s) => isolated.has(s.subnetId));
}
