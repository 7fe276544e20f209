import { App } from 'aws-cdk-lib';
import { addCompliancePacks } from './compliance';
import { EcommerceAssistantOpenSearchStack, EcommerceAssistantSageMakerStack, EcommerceAssistantStack } from './ecommerce-assistant';
import { addGlobalAssistant } from './global-assistant';

// Every example is checked by cdk-nag's AWS Solutions pack, and with `-c nag=all` also by its
// NIST 800-53 Rev 5 pack: an unacknowledged finding fails synth. The feature flags are cdk.json's.
const app = new App();
addCompliancePacks(app);

// Account-agnostic, so `cdk synth` needs no AWS credentials. The SageMaker variant names its
// Region because the inference container image lives in a Regional ECR repository.
new EcommerceAssistantStack(app, 'EcommerceAssistant');
new EcommerceAssistantSageMakerStack(app, 'EcommerceAssistantSageMaker', { env: { region: 'us-east-1' } });
new EcommerceAssistantOpenSearchStack(app, 'EcommerceAssistantOpenSearch');
// The 1M users/day phase: two Regions behind one CloudFront distribution.
addGlobalAssistant(app);

app.synth();
