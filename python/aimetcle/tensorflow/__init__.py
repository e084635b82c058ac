"""The TensorFlow-flavoured entry points of AIMET (``aimet_tensorflow``), on aimetcle models."""
