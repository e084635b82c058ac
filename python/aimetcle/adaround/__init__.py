"""AdaRound (``aimet_torch.adaround``): ``from aimetcle.adaround.adaround_weight
import Adaround, AdaroundParameters``."""
