/*
 * runnel/runnel.h: the umbrella header of librunnel.
 */
#ifndef RUNNEL_RUNNEL_H
#define RUNNEL_RUNNEL_H

#include <runnel/common.h>
#include <runnel/conf.h>
#include <runnel/datastream.h>
#include <runnel/error.h>
#include <runnel/graph.h>
#include <runnel/plugin.h>
#include <runnel/types.h>

#endif
