"""The aws-lambda bentoctl operator: the four entry points bentoctl calls.

generate            main.tf and bentoctl.tfvars from deployment_config.yaml   (terraform_config.py)
create_deployable   the image build context: Dockerfile, handler, Bento, model (deployable.py)
create_repository   the ECR repository and push credentials                   (ecr.py)
delete_repository   removes it again (`bentoctl destroy`)                     (ecr.py)
"""

from aws_lambda_operator.deployable import create_deployable
from aws_lambda_operator.ecr import create_repository, delete_repository
from aws_lambda_operator.terraform_config import generate

__all__ = ["generate", "create_deployable", "create_repository", "delete_repository"]
