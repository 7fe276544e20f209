import * as ec2 from 'aws-cdk-lib/aws-ec2';

/** The private subnets the library places its resources in: isolated ones if the VPC has any. */
export function defaultPrivateSubnets(vpc: ec2.IVpc): ec2.SubnetSelection {
  return { subnetType: vpc.isolatedSubnets.length > 0 ? ec2.SubnetType.PRIVATE_ISOLATED : ec2.SubnetType.PRIVATE_WITH_EGRESS };
}
