// Everything in core/: include this to use tensors, ops and autograd.
#pragma once
#include "core/autograd.h"
#include "core/device.h"
#include "core/error.h"
#include "core/flop_counter.h"
#include "core/ops.h"
#include "core/random.h"
#include "core/shape.h"
#include "core/tensor.h"
