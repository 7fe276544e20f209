import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { EcommerceAssistantOpenSearchStack, EcommerceAssistantSageMakerStack, EcommerceAssistantStack } from './ecommerce-assistant';

// Every example is checked by cdk-nag's AWS Solutions pack: an unacknowledged finding fails synth.
const app = new App();
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

// Account-agnostic, so `cdk synth` needs no AWS credentials. The SageMaker variant names its
// Region because the inference container image lives in a Regional ECR repository.
new EcommerceAssistantStack(app, 'EcommerceAssistant');
new EcommerceAssistantSageMakerStack(app, 'EcommerceAssistantSageMaker', { env: { region: 'us-east-1' } });
new EcommerceAssistantOpenSearchStack(app, 'EcommerceAssistantOpenSearch');

app.synth();
