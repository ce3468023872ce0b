"""eksnet: advanced networking for Amazon EKS, as AWS CDK v2 constructs.

Modules are imported explicitly (``from eksnet.vpc import ...``): importing the
package itself does nothing, so a node or a Lambda never pays for CDK.
"""

__version__ = "0.1.0"
